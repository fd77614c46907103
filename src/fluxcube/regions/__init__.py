"""Stage 6: regional integrals of gridded fluxes over the 18 land regions, and the Lasso bridge models."""

"""Stage 5, drivers: the FLUXCOM RS+METEO driver set (Tramontana et al. 2016) at tower pixels and on the
0.5 degree land grid.

- :mod:`fluxcube.drivers.table`: the driver table (name, source, formula, units, time step).
- :mod:`fluxcube.drivers.seasonal`: mean seasonal cycles of the MODIS 8-day indices and their metrics.
- :mod:`fluxcube.drivers.water`: Priestley-Taylor demand and the daily soil-water bucket (WAI).
- :mod:`fluxcube.drivers.radiation`: daily mean potential radiation Rpot.
- :mod:`fluxcube.drivers.pixels`: reading (time, lat, lon) stores at a set of cells, and all drivers
  for one set of cells (streamed over time).
- :mod:`fluxcube.drivers.build`: the site driver store and the packed global driver cube, on Dask.
- :mod:`fluxcube.drivers.synthetic`: input stores of the stage's input schemas with analytic fields.

See ``docs/drivers.md``.
"""

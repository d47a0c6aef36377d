"""Fitting from data that live elsewhere: DuckDB (relations, Parquet and CSV files) and Dask.

The rows never come to the client: a first pass learns what the formula needs (factor levels,
``scale()`` statistics, the rows with missing values), a second computes every cross-product
block as grouped sums where the data live (``docs/scale.md``).
"""

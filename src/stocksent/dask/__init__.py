"""stocksent on Dask (the optional extra `stocksent[dask]`): score and index a Dask DataFrame,
or an archive of message files, on a Dask cluster, with the same results as one process.

    import dask.dataframe as dd
    from stocksent.dask import index, predict

    frame = dd.read_parquet("archive/")
    predict(frame, "models/default").to_parquet("scored/")      # the input's columns, label, prob_bullish
    index(frame, "models/default", freq="month", ticker_column="ticker")   # a pandas DataFrame

    frames.py   predict and index of a Dask DataFrame, partition by partition
    model.py    the model as workers get it: its files' bytes, loaded once per worker
    archive.py  files as partitions, and scored partitions written as one folder of Parquet
    cluster.py  connecting to a scheduler or starting a local one; following a job
"""
from .frames import index, predict
from .model import ModelFiles

__all__ = ["ModelFiles", "index", "predict"]

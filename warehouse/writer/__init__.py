"""Writer: the only code that writes loads. A batch of extracted pages merged in one
transaction keyed by 索引号 (`load.py`, its steps in `sql/`), what a report's history says
beyond its versions (`history.py`: rekeyed, superseded, in conflict, gone), the search index
kept beside the sections it indexes (`search.py`), and the runs ledger (`runs.py`). Import the
modules by name (this package imports nothing).
"""

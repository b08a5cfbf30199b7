"""The read-only web dashboard (`vsm dashboard`): a Starlette app (`app.py`) over one reader of
the ledger (`source.py`), drawing the read models of `views/dashboard_data.py`."""

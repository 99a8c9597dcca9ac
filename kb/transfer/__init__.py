"""Transfer: imports and exports of campaigns (pages, API, CLI) over the ingest formats."""

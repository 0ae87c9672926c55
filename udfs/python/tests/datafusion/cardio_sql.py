"""What the DataFusion tests share: where ODDS cardio is, its feature columns, and the table's DDL (the
same statement in Python DataFusion and in the `autoenc-sql` shell). A module of its own, not
`conftest`, because the Polars tests beside these have a `conftest` too."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[4]
CARDIO = ROOT / "tests" / "data" / "odds" / "cardio.csv"
FEATURES = [f"f{j}" for j in range(21)]
COLUMNS = ", ".join(FEATURES)


def table_ddl(cardio_csv: pathlib.Path) -> str:
    return (
        f"CREATE EXTERNAL TABLE cardio STORED AS CSV LOCATION '{cardio_csv}' "
        "OPTIONS ('format.has_header' 'true')"
    )

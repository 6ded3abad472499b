"""A small daily DAG: counts words in a fixed list of campaign names (no network, no database).

Written for Airflow 2.10 and Airflow 3 alike: the task SDK (``airflow.sdk``) where it exists,
the Airflow 2 decorators otherwise.
"""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

CAMPAIGNS = ("Welcome series", "Spring sale", "Win-back")


@dag(
    dag_id="campaign_report",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["campaign"],
)
def campaign_report() -> None:
    """Summarise the campaigns: one task counts, the next reports."""

    @task
    def count_words() -> int:
        return sum(len(name.split()) for name in CAMPAIGNS)

    @task
    def report(words: int) -> str:
        line = f"{len(CAMPAIGNS)} campaigns, {words} words"
        print(line)
        return line

    report(count_words())


campaign_report()

"""Shared fixtures: tiny hand-written organisations and a small generated one."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

TINY_ORG_YAML = """\
name: Tiny Theatre
currency: GBP
season_start_month: 9
timezone: Europe/London
sources:
  productions:
    file: events.csv
    columns: {production_id: Event ID, title: Event, artform: Artform}
  performances:
    file: instances.csv
    date_format: "%d/%m/%Y %H:%M"
    columns: {performance_id: Instance ID, production_id: Event ID, start_time: Start, capacity: Capacity}
  customers:
    file: customers.csv
    date_format: "%d/%m/%Y"
    columns:
      customer_id: Customer ID
      postcode: Postcode
      birth_date: DOB
      created_at: Created
  order_lines:
    file: sales.csv
    date_format: "%d/%m/%Y %H:%M"
    columns:
      line_id: Line ID
      order_id: Order ID
      customer_id: Customer ID
      purchase_time: Order Date
      channel: Channel
      performance_id: Instance ID
      list_price: List Price
      paid_amount: Paid
      status: Status
      parent_line_id: Original Line ID
    values:
      channel: {Web: online, Phone: phone, Box Office: box_office}
      status: {Sold: active, Returned: returned, Exchanged: exchanged}
"""

TINY_FILES = {
    "events.csv": """\
        Event ID,Event,Artform
        E1,Hamlet,theatre
        E2,Brahms Night,classical
        """,
    "instances.csv": """\
        Instance ID,Event ID,Start,Capacity
        P1,E1,05/10/2024 19:30,500
        P2,E1,12/10/2024 19:30,500
        P3,E2,20/11/2024 19:30,900
        """,
    "customers.csv": """\
        Customer ID,First Name,Email,Postcode,DOB,Created
        1001,Quartermaine,zq.private@example.org,SE1 7PB,14/02/1980,01/01/2020
        1002,Wolstenholme,bw.private@example.org,M1 1AE,,03/03/2021
        1003,Fitzwilliam,cf.private@example.org,EH1 1YZ,,05/05/2022
        """,
    "sales.csv": """\
        Line ID,Order ID,Customer ID,Order Date,Channel,Instance ID,List Price,Paid,Status,Original Line ID
        L1,O1,1001,01/09/2024 10:00,Web,P1,£25.00,£25.00,Sold,
        L2,O1,1001,01/09/2024 10:00,Web,P1,£25.00,£20.00,Sold,
        L3,O2,1002,02/09/2024 11:00,Phone,P2,"£1,025.50","£1,025.50",Sold,
        L4,O3,1002,03/09/2024 12:00,Phone,P2,-£1025.50,-£1025.50,Returned,L3
        L5,O4,1003,04/10/2024 09:00,Box Office,P3,£40.00,£40.00,Sold,
        """,
}


def write_org(root: Path, files: dict[str, str], org_yaml: str = TINY_ORG_YAML) -> Path:
    """Write an organisation folder from dedented file texts."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "org.yaml").write_text(org_yaml, encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def tiny_org(tmp_path: Path) -> Path:
    """A hand-written five-line organisation (see TINY_FILES for the known answers)."""
    return write_org(tmp_path / "tiny", TINY_FILES)


SMALL_CUSTOMERS = 1_500


@pytest.fixture(scope="session")
def small_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated organisation (1,500 customers), intake already run.

    Shared by the whole test session: tests must not modify it (copy it first).
    """
    from playbook.intake import run_intake
    from playbook.synth import SynthConfig, generate

    org = tmp_path_factory.mktemp("generated") / "small-org"
    generate(org, SynthConfig(seed=7, customers=SMALL_CUSTOMERS))
    run_intake(org)
    return org

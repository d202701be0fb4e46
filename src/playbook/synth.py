"""Synthetic demo organisation: raw ticketing and CRM exports with known ground truth.

:func:`generate` writes a complete organisation folder for a mid-size arts centre
(theatre, music, dance, comedy, family shows, talks): ``org.yaml`` (a copy of the
packaged ``templates/demo_org.yaml``), every raw export that template lists under
``exports/``, an organisation salt under ``private/`` and the ground truth under
``truth/`` (latent segments, calibration targets and what the data actually show).

The simulation follows the published benchmarks in ``DOMAIN.md``:

- customers arrive at a steady rate over the seasons; each belongs to a latent
  behaviour segment with its own signature (artform, party size, lead time, price
  band, ticket type, weekday or weekend, channel, frequency);
- visits follow a BG/NBD-like process (Poisson visits at a gamma-distributed rate,
  dropping out after each visit with a segment-dependent probability), calibrated so
  that 70–80% of first-timers do not book again within a year and about a third of a
  season's customers come back the next season;
- subscriptions and memberships renew like a shifted-beta-geometric process: first-year
  renewal far below later renewal;
- a few per cent of customers (major patrons) give about half of all revenue.

Everything is vectorised with numpy and pyarrow; Python loops run only over small
things (visit rounds, seasons, artforms, streams of productions, production titles,
newsletters, messy rows). CSV files are written by Arrow from pre-formatted columns:
money strings come from a dictionary of the distinct amounts, dates from lookup tables
of days and times of day. The same seed and configuration give byte-identical files
(every component draws from its own stream, ``default_rng([seed, crc32(name)])``).

Known simplification: venues are not booked exclusively, so two artforms may play the
same venue on the same night.

Examples
--------
>>> from playbook.synth import SynthConfig, generate
>>> summary = generate("data/demo", SynthConfig(customers=2_000))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
import zlib
from dataclasses import asdict, dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

__all__ = ["DEFAULT_CONFIG", "SEGMENT_NAMES", "SynthConfig", "generate"]


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthConfig:
    """Settings of one synthetic organisation.

    Parameters
    ----------
    seed : int
        Seed of every random draw; the same seed and settings give identical files.
    customers : int
        Number of customers (every one books at least once).
    first_season : int
        Calendar year in which the first season starts (seasons start in September).
    n_seasons : int
        Number of seasons; the data end on the last day of August after the last one.
    messy : int
        Number of messy rows of each kind added to ``exports/sales.csv``.
    """

    seed: int = 42
    customers: int = 20_000
    first_season: int = 2022
    n_seasons: int = 4
    messy: int = 0


DEFAULT_CONFIG = SynthConfig()

SEASON_START_MONTH = 9
TEMPLATE = "demo_org.yaml"
MINUTES_PER_DAY = 1440
YEAR_DAYS = 365.25

# ---------------------------------------------------------------------------
# Calibration knobs (DOMAIN.md "Benchmark figures" unless said otherwise)
# ---------------------------------------------------------------------------
# Expected ranges written to truth/generator.json and checked by the tests.
EXPECTED: dict[str, tuple[float, float]] = {
    # first-time buyers who do not return: 70% (Philadelphia), 74-83% (TRG), 81% (Spektrix)
    "first_timer_return_12m": (0.20, 0.30),
    # overall one-year retention 31-33% (Spektrix)
    "retention_1y": (0.25, 0.40),
    # subscription renewal: ~85% ceiling, first-year subscribers far less (TRG, ASO)
    "subscriber_renewal": (0.65, 0.88),
    "subscriber_renewal_first_year": (0.45, 0.65),
    "member_renewal_first_year": (0.45, 0.70),
    "member_renewal_later": (0.75, 0.93),
    # revenue concentration: <3% of patrons gave 62% of revenue (Philadelphia 2014)
    "top_3pct_revenue_share": (0.40, 0.62),
    # first-timers as share of a season's buyers: 54-56% (Spektrix)
    "first_timer_share": (0.45, 0.65),
    # online share of transactions ~60% (Spektrix 2019)
    "online_share": (0.50, 0.75),
}
# Share of sold seats a performance is planned for when sizing the programme.
OCCUPANCY_TARGET = 0.68
# No performance sells more than this share of its seats.
MAX_FILL = 0.98
# Ticket orders returned (about 3% of ticket lines) and picked for an exchange; about
# half of the picks have no other performance to move to, leaving ~1% exchanged.
RETURN_ORDER_RATE = 0.03
EXCHANGE_ORDER_RATE = 0.02
# Orders given as complimentary tickets (about 3% of ticket lines).
COMP_ORDER_RATE = 0.035
# Orders with one extra voided line.
VOID_ORDER_RATE = 0.003
# Performances cancelled (every ticket returned: service-recovery cases).
CANCEL_RATE = 0.01
# Share of tickets that stood and were scanned at the door.
SCAN_RATE = 0.92
# Post-show survey response rate per visit.
SURVEY_RATE = 0.08
# Booking fee per online order, in pence.
FEE_PENCE = 150
# Opens of triggered pre-show emails 44-50% vs newsletters 26% (Capacity Interactive 2017).
PRESHOW_OPEN_RATE = 0.47
NEWSLETTER_OPEN_RATE = 0.26
NEWSLETTER_CLICK_RATE = 0.03
# Share of bookings preceded by a click on that production in an email.
CLICK_BEFORE_BOOKING = 0.40
# Share of online bookings preceded by a web visit to the production page.
WEB_VISIT_BEFORE_ONLINE = 0.65
# Share of email-consented customers who click one production 2-3 times and never book.
WINDOW_SHOPPER_RATE = 0.08
# Chance that a newsletter send ends in an unsubscribe.
UNSUBSCRIBE_RATE = 0.002
NEWSLETTERS = ((9, 3), (11, 12), (1, 15), (4, 20))  # (month, day) of each season's newsletters
# Consent shares per channel (opted in, opted out; the rest not asked).
CONSENT_CHANNELS = ("email", "post", "sms", "phone")
CONSENT_SHARES = ((0.65, 0.12), (0.40, 0.15), (0.15, 0.10), (0.20, 0.15))
# Customer records: share in a shared household, with a birth date, anonymised.
HOUSEHOLD_SHARE = 0.15
DOB_SHARE = 0.30
BIRTHDAY_OK_SHARE = 0.85
ANONYMISED_SHARE = 0.01
# Membership renewal: ~55-60% after the first year, ~85% later (sBG, Fader & Hardie 2007).
MEMBER_RENEW_FIRST = 0.57
MEMBER_RENEW_LATER = 0.85
MEMBER_UPGRADE = 0.08
MEMBER_LATE_RENEWAL = 0.2  # renewals that come up to 30 days after the expiry
# Subscription renewal: 50-60% after the first year, ~85% later (ASO: 50% new vs 85%).
SUB_RENEW_FIRST = 0.55
SUB_RENEW_LATER = 0.83
# Performances in a season subscription package.
PACKAGE_MIN, PACKAGE_MAX = 3, 5
MAX_VISIT_ROUNDS = 80

# ---------------------------------------------------------------------------
# Vocabularies of the generated organisation
# ---------------------------------------------------------------------------
ARTFORMS = (
    "Theatre",
    "Musical",
    "Classical Music",
    "Contemporary Music",
    "Dance",
    "Comedy",
    "Family",
    "Talks",
)
TH, MU, CL, CM, DA, CO, FA, TA = range(len(ARTFORMS))
GENRES = (
    ("Drama", "New Writing", "Classic", "Shakespeare", "Comedy Drama"),
    ("Musical Theatre", "Jukebox Musical", "Musical Revival"),
    ("Orchestral", "Chamber", "Choral"),
    ("Rock and Pop", "Jazz", "Folk", "Electronic", "World"),
    ("Contemporary Dance", "Ballet", "Hip Hop"),
    ("Stand-up", "Sketch", "Improv"),
    ("Children's Theatre", "Puppetry", "Christmas Show"),
    ("Author Talk", "Lecture", "Panel"),
)
VENUES = ("Main House", "Studio", "Concert Hall")
VENUE_CAPACITY = np.array([700, 180, 1100])
VENUE_PROBS = np.array(
    [
        [0.6, 0.4, 0.0],
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
        [0.0, 0.5, 0.5],
        [0.8, 0.2, 0.0],
        [0.4, 0.6, 0.0],
        [0.5, 0.5, 0.0],
        [0.0, 1.0, 0.0],
    ]
)
# Evening start (minutes after midnight) per artform; daytime slots on Saturdays/Sundays.
EVENING_START = np.array([1170, 1170, 1170, 1200, 1170, 1200, 1080, 1140])
DAYTIME_SLOTS = {FA: (660, 870)}
DAYTIME_DEFAULT = (870,)
# Mean performances per production, and fewest productions per artform and season
# (34 per season in all, so at least 30 as the brief asks).
RUN_MEAN = np.array([12.0, 16.0, 1.3, 1.2, 4.0, 1.5, 10.0, 1.0])
PROD_MIN = np.array([6, 2, 8, 5, 3, 4, 3, 3])
# Most performances of one artform a single stream of productions plays in a season.
STREAM_SHARE = 0.55
# Month weights of the programme (index = calendar month - 1): busy autumn and
# Christmas, quiet summer.
MONTH_WEIGHTS = np.array([0.75, 0.9, 1.0, 0.95, 0.95, 0.8, 0.55, 0.3, 0.95, 1.15, 1.2, 1.3])
# List prices in pence, per artform (rows) and price band A-D (columns).
BANDS = ("A", "B", "C", "D")
LIST_PRICE = np.array(
    [
        [4500, 3500, 2500, 1500],
        [6500, 5000, 3500, 2000],
        [5500, 4000, 2800, 1500],
        [3500, 2800, 2200, 1500],
        [4200, 3200, 2400, 1400],
        [2800, 2200, 1800, 1200],
        [2400, 1800, 1400, 1000],
        [1800, 1400, 1200, 800],
    ]
)
PRICE_FACTORS = np.array([0.9, 1.0, 1.0, 1.1, 1.2])
TICKET_TYPES = ("Full", "Concession", "Under 18", "Under 26", "Subscription", "Comp")
FULL, CONC, U18, U26, SUBT, COMP = range(len(TICKET_TYPES))
CONCESSION_FACTOR = 0.8
UNDER18_FACTOR = 0.5
UNDER26_PENCE = 1000
SUBSCRIPTION_FACTOR = 0.8
ITEMS = ("ticket", "subscription", "fee", "merchandise", "voucher")
IT_TICKET, IT_SUB, IT_FEE, IT_MERCH, IT_VOUCHER = range(len(ITEMS))
STATUSES = ("active", "returned", "exchanged", "void")
ST_SOLD, ST_RET, ST_EXCH, ST_VOID = range(len(STATUSES))
CHANNELS = ("online", "phone", "box_office")
WEB, PHONE, BOX = range(len(CHANNELS))
PROGRAMME_PENCE = 400
VOUCHER_PENCE = np.array([2500, 5000, 10000])
MERCH_QTY2 = 0.2
VOUCHER_RATE = 0.004
SPECTRUM = (
    "Metroculturals",
    "Commuterland Culturebuffs",
    "Experience Seekers",
    "Dormitory Dependables",
    "Trips & Treats",
    "Home & Heritage",
    "Up Our Street",
    "Frontline Families",
    "Kaleidoscope Creativity",
    "Supported Communities",
    "Unclassified",
)
MEMBER_SCHEME = "Friends"
MEMBER_LEVELS = ("Friend", "Supporter", "Patron")
MEMBER_PENCE = np.array([6000, 15000, 50000])
FUNDS = ("Annual Fund", "Creative Learning", "New Work Fund", "Capital Appeal")
FUND_PROBS = np.array([0.5, 0.2, 0.15, 0.15])


@dataclass(frozen=True)
class Segment:
    """Behavioural signature of one latent customer segment.

    Probability vectors are indexed like the vocabularies above (``ARTFORMS``, ``BANDS``,
    channels web/phone/box office, party sizes 1-5, ``SPECTRUM``, NPS 0-10).
    """

    name: str
    share: float  # share of all customers
    base: float  # share already customers before the data start (the existing base)
    rate_mean: float  # mean visits per year while active (gamma mixing)
    rate_shape: float
    drop_first: float  # probability of dropping out after the first visit
    drop_later: float  # ... after any later visit
    artform: tuple[float, ...]
    daytime: float  # share of visits to weekend daytime performances
    party: tuple[float, ...]
    lead_days: float  # median booking lead time
    lead_sigma: float
    band: tuple[float, ...]
    ticket: tuple[float, ...]  # Full, Concession, Under 18, Under 26 (per ticket)
    channel: tuple[float, ...]
    merch: float
    subscribe: float  # share who hold a season subscription
    member: float  # share who join the Friends scheme
    member_level: tuple[float, ...]
    donor: float
    gifts_per_year: float
    gift_median: float  # pounds
    gift_sigma: float
    age: tuple[int, int]
    spectrum: tuple[float, ...]
    nps: tuple[float, ...]


SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "casual_explorers",
        share=0.51,
        base=0.2,
        rate_mean=1.3,
        rate_shape=2.0,
        drop_first=0.71,
        drop_later=0.5,
        artform=(0.1, 0.52, 0.03, 0.08, 0.09, 0.08, 0.04, 0.06),
        daytime=0.08,
        party=(0.3, 0.6, 0.06, 0.03, 0.01),
        lead_days=7.0,
        lead_sigma=0.6,
        band=(0.02, 0.12, 0.78, 0.08),
        ticket=(0.9, 0.1, 0.0, 0.0),
        channel=(0.88, 0.05, 0.07),
        merch=0.05,
        subscribe=0.0,
        member=0.01,
        member_level=(0.95, 0.05, 0.0),
        donor=0.01,
        gifts_per_year=0.5,
        gift_median=25.0,
        gift_sigma=0.6,
        age=(22, 70),
        spectrum=(0.10, 0.12, 0.16, 0.14, 0.12, 0.08, 0.08, 0.06, 0.06, 0.03, 0.05),
        nps=(0.01, 0.01, 0.01, 0.02, 0.02, 0.04, 0.06, 0.14, 0.24, 0.22, 0.23),
    ),
    Segment(
        "family_weekenders",
        share=0.12,
        base=0.25,
        rate_mean=1.1,
        rate_shape=2.0,
        drop_first=0.66,
        drop_later=0.4,
        artform=(0.04, 0.2, 0.0, 0.0, 0.03, 0.0, 0.73, 0.0),
        daytime=0.9,
        party=(0.0, 0.0, 0.4, 0.42, 0.18),
        lead_days=21.0,
        lead_sigma=0.6,
        band=(0.0, 0.15, 0.45, 0.4),
        ticket=(1.0, 0.0, 0.0, 0.0),
        channel=(0.75, 0.1, 0.15),
        merch=0.15,
        subscribe=0.0,
        member=0.03,
        member_level=(0.95, 0.05, 0.0),
        donor=0.01,
        gifts_per_year=0.5,
        gift_median=20.0,
        gift_sigma=0.6,
        age=(30, 52),
        spectrum=(0.03, 0.08, 0.04, 0.16, 0.25, 0.04, 0.08, 0.22, 0.05, 0.02, 0.03),
        nps=(0.01, 0.01, 0.01, 0.01, 0.02, 0.03, 0.05, 0.12, 0.24, 0.24, 0.26),
    ),
    Segment(
        "classical_subscribers",
        share=0.06,
        base=0.6,
        rate_mean=1.5,
        rate_shape=2.0,
        drop_first=0.45,
        drop_later=0.12,
        artform=(0.03, 0.0, 0.91, 0.02, 0.02, 0.0, 0.0, 0.02),
        daytime=0.12,
        party=(0.45, 0.5, 0.05, 0.0, 0.0),
        lead_days=45.0,
        lead_sigma=0.6,
        band=(0.55, 0.4, 0.05, 0.0),
        ticket=(0.65, 0.35, 0.0, 0.0),
        channel=(0.2, 0.5, 0.3),
        merch=0.25,
        subscribe=0.8,
        member=0.3,
        member_level=(0.6, 0.35, 0.05),
        donor=0.25,
        gifts_per_year=0.8,
        gift_median=60.0,
        gift_sigma=0.8,
        age=(55, 85),
        spectrum=(0.25, 0.35, 0.02, 0.10, 0.03, 0.18, 0.02, 0.0, 0.01, 0.0, 0.04),
        nps=(0.0, 0.0, 0.0, 0.01, 0.01, 0.02, 0.03, 0.08, 0.2, 0.3, 0.35),
    ),
    Segment(
        "young_adventurers",
        share=0.13,
        base=0.2,
        rate_mean=4.0,
        rate_shape=2.5,
        drop_first=0.57,
        drop_later=0.35,
        artform=(0.05, 0.02, 0.0, 0.5, 0.18, 0.25, 0.0, 0.0),
        daytime=0.03,
        party=(0.72, 0.24, 0.04, 0.0, 0.0),
        lead_days=0.8,
        lead_sigma=0.9,
        band=(0.0, 0.02, 0.13, 0.85),
        ticket=(0.08, 0.25, 0.0, 0.67),
        channel=(0.95, 0.0, 0.05),
        merch=0.02,
        subscribe=0.0,
        member=0.0,
        member_level=(1.0, 0.0, 0.0),
        donor=0.0,
        gifts_per_year=0.0,
        gift_median=10.0,
        gift_sigma=0.5,
        age=(18, 26),
        spectrum=(0.15, 0.02, 0.45, 0.02, 0.03, 0.0, 0.03, 0.02, 0.22, 0.03, 0.03),
        nps=(0.02, 0.02, 0.02, 0.03, 0.04, 0.06, 0.08, 0.15, 0.22, 0.18, 0.18),
    ),
    Segment(
        "theatre_regulars",
        share=0.155,
        base=0.45,
        rate_mean=2.3,
        rate_shape=3.0,
        drop_first=0.55,
        drop_later=0.22,
        artform=(0.9, 0.05, 0.0, 0.0, 0.02, 0.01, 0.0, 0.02),
        daytime=0.15,
        party=(0.05, 0.9, 0.03, 0.02, 0.0),
        lead_days=30.0,
        lead_sigma=0.6,
        band=(0.15, 0.75, 0.09, 0.01),
        ticket=(0.8, 0.2, 0.0, 0.0),
        channel=(0.55, 0.32, 0.13),
        merch=0.12,
        subscribe=0.0,
        member=0.2,
        member_level=(0.75, 0.22, 0.03),
        donor=0.12,
        gifts_per_year=0.6,
        gift_median=40.0,
        gift_sigma=0.8,
        age=(40, 78),
        spectrum=(0.2, 0.3, 0.08, 0.15, 0.07, 0.12, 0.03, 0.01, 0.01, 0.0, 0.03),
        nps=(0.0, 0.0, 0.01, 0.01, 0.02, 0.03, 0.05, 0.12, 0.26, 0.24, 0.26),
    ),
    Segment(
        "major_patrons",
        share=0.025,
        base=0.75,
        rate_mean=3.5,
        rate_shape=3.0,
        drop_first=0.2,
        drop_later=0.04,
        artform=(0.45, 0.2, 0.12, 0.0, 0.13, 0.0, 0.0, 0.1),
        daytime=0.08,
        party=(0.08, 0.8, 0.04, 0.08, 0.0),
        lead_days=55.0,
        lead_sigma=0.5,
        band=(0.94, 0.06, 0.0, 0.0),
        ticket=(1.0, 0.0, 0.0, 0.0),
        channel=(0.2, 0.65, 0.15),
        merch=0.3,
        subscribe=0.1,
        member=0.85,
        member_level=(0.05, 0.25, 0.7),
        donor=0.9,
        gifts_per_year=1.6,
        gift_median=380.0,
        gift_sigma=0.9,
        age=(50, 82),
        spectrum=(0.35, 0.45, 0.02, 0.05, 0.01, 0.1, 0.0, 0.0, 0.0, 0.0, 0.02),
        nps=(0.0, 0.0, 0.0, 0.0, 0.0, 0.01, 0.02, 0.05, 0.17, 0.3, 0.45),
    ),
)
SEGMENT_NAMES: tuple[str, ...] = tuple(s.name for s in SEGMENTS)

# ---------------------------------------------------------------------------
# Word lists for names, titles and addresses
# ---------------------------------------------------------------------------
ADJECTIVES = (
    "Silent", "Golden", "Broken", "Hidden", "Last", "Wild", "Winter", "Summer", "Crimson",
    "Distant", "Burning", "Quiet", "Little", "Electric", "Glass", "Paper", "Iron", "Secret",
    "Lost", "Velvet", "Midnight", "Northern", "Restless", "Bright", "Hollow", "Tender",
    "Savage", "Fragile", "Endless", "Borrowed", "Painted", "Sleeping", "Drowned", "Wandering",
)  # fmt: skip
NOUNS = (
    "Garden", "River", "Crown", "House", "Letter", "Island", "Mirror", "Harbour", "Orchard",
    "Lantern", "Kingdom", "Bridge", "Tide", "Forest", "Season", "Promise", "Machine",
    "Country", "Window", "Station", "Road", "Storm", "Feather", "Engine", "Choir", "Circus",
    "Ballroom", "Archive", "Lighthouse", "Frontier", "Compass", "Meadow", "Shadow", "Voyage",
)  # fmt: skip
ANIMALS = (
    "Fox", "Owl", "Bear", "Dragon", "Tiger", "Whale", "Hedgehog", "Rabbit", "Penguin",
    "Giraffe", "Badger", "Otter", "Elephant", "Mouse",
)  # fmt: skip
CLASSIC_PLAYS = (
    "Hamlet", "Twelfth Night", "Macbeth", "The Seagull", "Hedda Gabler", "The Cherry Orchard",
    "Uncle Vanya", "Much Ado About Nothing", "The Importance of Being Earnest", "King Lear",
    "A Doll's House", "The Tempest", "Blithe Spirit", "Private Lives", "Arcadia",
)  # fmt: skip
COMPOSERS = (
    "Beethoven", "Brahms", "Mozart", "Mahler", "Tchaikovsky", "Dvorak", "Sibelius", "Elgar",
    "Shostakovich", "Schubert", "Mendelssohn", "Rachmaninov", "Haydn", "Vaughan Williams",
)  # fmt: skip
SHAKESPEARE = (
    "Hamlet",
    "Twelfth Night",
    "Macbeth",
    "Much Ado About Nothing",
    "King Lear",
    "The Tempest",
)
WORKS = (
    "Symphony No. 1", "Symphony No. 2", "Symphony No. 3", "Symphony No. 4", "Symphony No. 5",
    "Symphony No. 7", "Symphony No. 9", "Violin Concerto", "Piano Concerto No. 1",
    "Piano Concerto No. 2", "Cello Concerto", "Requiem", "String Quartets", "Serenade",
)  # fmt: skip
WORK_GENRES = tuple(
    "Choral"
    if w == "Requiem"
    else "Chamber"
    if w in ("String Quartets", "Serenade")
    else "Orchestral"
    for w in WORKS
)
FEMALE_NAMES = (
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophie", "Grace", "Lily", "Freya", "Ella",
    "Charlotte", "Poppy", "Hannah", "Lucy", "Chloe", "Jessica", "Sarah", "Emma", "Laura",
    "Rachel", "Rebecca", "Claire", "Helen", "Catherine", "Elizabeth", "Margaret", "Susan",
    "Patricia", "Jennifer", "Ruth", "Alice", "Priya", "Aisha", "Fatima", "Zara", "Mei",
    "Niamh", "Siobhan", "Anna", "Julia", "Gemma", "Kate", "Joanne", "Nicola", "Fiona",
)  # fmt: skip
MALE_NAMES = (
    "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Oscar", "Charlie",
    "Thomas", "James", "William", "Daniel", "Samuel", "Joseph", "David", "Michael", "Peter",
    "Richard", "John", "Andrew", "Mark", "Paul", "Stephen", "Christopher", "Robert",
    "Matthew", "Simon", "Ian", "Graham", "Mohammed", "Arjun", "Ravi", "Kwame", "Tomasz",
    "Liam", "Sean", "Owen", "Rhys", "Ben", "Adam", "Alex", "Nathan", "Edward", "Hugh",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Hughes", "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee",
    "Allen", "Morris", "Khan", "Scott", "Watson", "Davis", "Parker", "James", "Bennett",
    "Young", "Phillips", "Richardson", "Mitchell", "Bailey", "Carter", "Cook", "Singh",
    "Shaw", "Bell", "Collins", "Morgan", "Kelly", "Begum", "Miller", "Cox", "Hussain",
    "Marshall", "Simpson", "Price", "Anderson", "Adams", "Wilkinson", "Ali", "Ahmed",
    "Foster", "Ellis", "Murphy", "Chapman", "Mason", "Gray", "Richards", "Webb", "Griffiths",
    "Hunt", "Palmer", "Campbell", "Holmes", "Mills", "Rogers", "Barnes", "Knight", "Matthews",
    "Barker", "Powell", "Stevens", "Kaur", "Fisher", "Butler", "Dixon", "Russell", "Harvey",
    "Pearson", "Graham", "O'Brien", "O'Connor", "Nguyen", "Chen", "Kowalski", "Okafor",
)  # fmt: skip
STREETS = (
    "High", "Church", "Station", "Park", "Victoria", "Mill", "School", "Queen", "King",
    "Manor", "Orchard", "Meadow", "Chapel", "Bridge", "Green", "Grove", "West", "North",
    "South", "Windsor", "York", "Albert", "Elm", "Oak", "Cedar", "Willow", "Ash", "Beech",
    "Harbour", "Quay", "Cathedral", "College", "Market", "Riverside", "Hillside", "Kingsway",
)  # fmt: skip
STREET_KINDS = ("Road", "Street", "Lane", "Avenue", "Close", "Way", "Gardens", "Terrace")
# Outward postcodes and post towns around the (fictional) venue, with weights.
DISTRICTS = (
    ("BS1", "Bristol", 6), ("BS2", "Bristol", 4), ("BS3", "Bristol", 6), ("BS4", "Bristol", 4),
    ("BS5", "Bristol", 5), ("BS6", "Bristol", 6), ("BS7", "Bristol", 6), ("BS8", "Bristol", 6),
    ("BS9", "Bristol", 4), ("BS13", "Bristol", 2), ("BS14", "Bristol", 2), ("BS16", "Bristol", 4),
    ("BS15", "Kingswood", 2), ("BS20", "Portishead", 2), ("BS21", "Clevedon", 2),
    ("BS23", "Weston-super-Mare", 2), ("BS31", "Keynsham", 2), ("BS34", "Bristol", 2),
    ("BS35", "Thornbury", 1), ("BS37", "Yate", 1), ("BS48", "Nailsea", 1), ("BA1", "Bath", 3),
    ("BA2", "Bath", 3), ("BA11", "Frome", 1), ("GL1", "Gloucester", 1),
    ("GL50", "Cheltenham", 1), ("SN1", "Swindon", 1), ("CF10", "Cardiff", 2),
    ("NP20", "Newport", 1), ("TA1", "Taunton", 1), ("EX1", "Exeter", 1), ("SE1", "London", 1),
    ("N1", "London", 1), ("E8", "London", 1), ("OX1", "Oxford", 1),
)  # fmt: skip
INWARD_LETTERS = np.frombuffer(b"ABDEFGHJLNPQRSTUWXYZ", dtype=np.uint8)
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.co.uk")
FEMALE_TITLES = ("Ms", "Mrs", "Miss", "Dr")
FEMALE_TITLE_P = (0.45, 0.35, 0.15, 0.05)
MALE_TITLES = ("Mr", "Dr")
MALE_TITLE_P = (0.94, 0.06)

CUSTOMER_EXTRAS = ("Title", "First Name", "Last Name", "Email", "Phone", "Address Line 1", "Town")
MESSY_KINDS = (
    "blank_row",
    "missing_customer",
    "unparseable_date",
    "unparseable_amount",
    "duplicate_line",
    "unknown_performance",
    "negative_not_return",
    "orphan_return",
    "unknown_value",
)
LINE_ID_START = 1_000_001
ORDER_ID_START = 500_001
INSTANCE_ID_START = 20_001
EVENT_ID_START = 1_001
MEMBERSHIP_ID_START = 70_001
GIFT_ID_START = 90_001
RESPONSE_ID_START = 1


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
def _rng(seed: int, name: str) -> np.random.Generator:
    """An independent random stream per component, so components do not shift each other."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _choose(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one category per row from row-specific probabilities.

    Parameters
    ----------
    rng : numpy.random.Generator
    probs : numpy.ndarray
        ``(k, m)`` table; row ``j`` holds the probabilities of ``m`` categories.
    rows : numpy.ndarray of int
        Which row of ``probs`` applies to each draw.

    Returns
    -------
    numpy.ndarray of int8
        Category index per draw.
    """
    cum = np.cumsum(probs, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(rows))
    out = np.zeros(len(rows), dtype=np.int8)
    for j in range(probs.shape[1] - 1):
        out += u >= cum[rows, j]
    return out


def _seg_table(attr: str) -> np.ndarray:
    """Stack one attribute of every segment into an array (rows = segments)."""
    return np.array([getattr(s, attr) for s in SEGMENTS], dtype=float)


def _repeat_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row index repeated ``counts`` times, and the position within each repeat."""
    counts = np.asarray(counts, dtype=np.int64)
    idx = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(idx)) - np.repeat(starts, counts)
    return idx, pos


def _round_to(pence: np.ndarray, step: int) -> np.ndarray:
    """Round pence to a multiple of ``step``."""
    return (np.round(np.asarray(pence, dtype=float) / step) * step).astype(np.int64)


@dataclass(frozen=True)
class _Calendar:
    """Day arithmetic of the simulated period (day 0 = first season start)."""

    start: np.datetime64  # first day, datetime64[D]
    season_days: np.ndarray  # first day of each season, plus the end, as day offsets
    month: np.ndarray  # calendar month (1-12) of each day
    dom: np.ndarray  # day of the month (1-31)
    weekday: np.ndarray  # 0 = Monday
    warp_u: np.ndarray  # cumulative programme intensity per day boundary

    @property
    def horizon(self) -> int:
        """Number of days in the simulated period."""
        return int(self.season_days[-1])

    def season_of(self, day: np.ndarray) -> np.ndarray:
        """Season index of day offsets."""
        return np.searchsorted(self.season_days, day, side="right") - 1

    def warp(self, u: np.ndarray) -> np.ndarray:
        """Map operational time (uniform rate) to calendar days (seasonal rate)."""
        return np.interp(u, self.warp_u, np.arange(self.horizon + 1, dtype=float))


def _calendar(cfg: SynthConfig) -> _Calendar:
    """Build the calendar of ``cfg``'s seasons."""
    start = date(cfg.first_season, SEASON_START_MONTH, 1)
    bounds = [
        (date(cfg.first_season + k, SEASON_START_MONTH, 1) - start).days
        for k in range(cfg.n_seasons + 1)
    ]
    days = np.datetime64(start, "D") + np.arange(bounds[-1])
    month = (days.astype("datetime64[M]").astype(np.int64) % 12) + 1
    weekday = (days.astype(np.int64) + 3) % 7
    dom = (days - days.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    w = MONTH_WEIGHTS[month - 1]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        w[a:b] *= (b - a) / w[a:b].sum()
    warp_u = np.concatenate([[0.0], np.cumsum(w)])
    return _Calendar(np.datetime64(start, "D"), np.array(bounds), month, dom, weekday, warp_u)


# ---------------------------------------------------------------------------
# Customers and visits
# ---------------------------------------------------------------------------
@dataclass
class _Customers:
    """Latent state of every customer (index = internal customer number)."""

    seg: np.ndarray  # segment index
    base: np.ndarray  # already a customer before the data start
    rate: np.ndarray  # visits per year while active
    ids: np.ndarray  # raw export Customer ID (numeric)


def _make_customers(cfg: SynthConfig) -> _Customers:
    """Draw segments, existing-base flags, visit rates and export ids."""
    rng = _rng(cfg.seed, "customers")
    n = cfg.customers
    share = _seg_table("share")
    seg = rng.choice(len(SEGMENTS), size=n, p=share / share.sum()).astype(np.int8)
    base = rng.random(n) < _seg_table("base")[seg]
    shape = _seg_table("rate_shape")[seg]
    rate = rng.gamma(shape, _seg_table("rate_mean")[seg] / shape)
    span = 900_000 if n <= 300_000 else 9_900_000
    # Random, unordered with respect to creation; ascending by internal number so every
    # customer-level export is already in Customer ID order.
    ids = 100_000 + np.sort(rng.choice(span, size=n, replace=False)).astype(np.int64)
    return _Customers(seg=seg, base=base, rate=rate, ids=ids)


def _simulate_visits(
    cfg: SynthConfig, cust: _Customers, cal: _Calendar
) -> tuple[np.ndarray, np.ndarray]:
    """BG/NBD-like visit times of every customer.

    A new customer's first visit falls anywhere in the period (steady inflow); an
    existing customer's first visit in the data falls in the first season. After each
    visit the customer drops out with probability ``drop_first`` (first visit of a new
    customer) or ``drop_later``; otherwise the next visit follows after an exponential
    gap at the customer's rate. Visits are simulated in operational time and warped to
    the calendar so that they follow the programme's seasonal rhythm.

    Returns
    -------
    cust_idx, day : numpy.ndarray
        Internal customer number and calendar day (float) of every visit.
    """
    rng = _rng(cfg.seed, "visits")
    n = len(cust.seg)
    horizon = float(cal.horizon)
    u0 = np.where(
        cust.base,
        rng.random(n) * cal.season_days[1],
        rng.random(n) * horizon,
    )
    drop_first = np.where(
        cust.base, _seg_table("drop_later")[cust.seg], _seg_table("drop_first")[cust.seg]
    )
    drop_later = _seg_table("drop_later")[cust.seg]
    idx_parts = [np.arange(n)]
    u_parts = [u0]
    cur, u = np.arange(n), u0
    for k in range(MAX_VISIT_ROUNDS):
        if cur.size == 0:
            break
        p = drop_first[cur] if k == 0 else drop_later[cur]
        stay = rng.random(cur.size) >= p
        cur, u = cur[stay], u[stay]
        u = u + rng.exponential(YEAR_DAYS / cust.rate[cur])
        ok = u < horizon
        cur, u = cur[ok], u[ok]
        idx_parts.append(cur)
        u_parts.append(u)
    idx = np.concatenate(idx_parts)
    day = cal.warp(np.concatenate(u_parts))
    return idx, day


@dataclass
class _Visits:
    """Single-ticket visits (one order each) before they meet a performance."""

    cust: np.ndarray
    day: np.ndarray  # intended calendar day (float)
    season: np.ndarray
    artform: np.ndarray
    daytime: np.ndarray  # bool
    party: np.ndarray


def _visit_attributes(
    cfg: SynthConfig, cust: _Customers, cal: _Calendar, idx: np.ndarray, day: np.ndarray
) -> _Visits:
    """Artform, daypart and party size of every visit, from the customer's segment."""
    rng = _rng(cfg.seed, "visit-attributes")
    seg = cust.seg[idx]
    artform = _choose(rng, _seg_table("artform"), seg)
    daytime = rng.random(len(idx)) < _seg_table("daytime")[seg]
    daytime |= artform == FA
    daytime &= rng.random(len(idx)) < np.where(artform == FA, 0.97, 1.0)
    party = _choose(rng, _seg_table("party"), seg).astype(np.int64) + 1
    season = cal.season_of(day)
    return _Visits(idx, day, season, artform.astype(np.int64), daytime, party)


@dataclass
class _Subscriptions:
    """Season subscriptions (one package order each)."""

    cust: np.ndarray
    season: np.ndarray
    first_year: np.ndarray  # bool: the subscriber's first subscribed season
    renewed: np.ndarray  # bool: subscribed again the next season (NaN-free; last season False)
    party: np.ndarray
    n_perf: np.ndarray


def _simulate_subscriptions(
    cfg: SynthConfig, cust: _Customers, cal: _Calendar, visits: _Visits
) -> _Subscriptions:
    """Subscription seasons: start, then renew with first-year or later probability.

    Existing subscribers hold a subscription in the first season and renew at the later
    rate; a new subscriber subscribes the season after their first visit and renews
    the first time at ``SUB_RENEW_FIRST``.
    """
    rng = _rng(cfg.seed, "subscriptions")
    n = len(cust.seg)
    wants = rng.random(n) < _seg_table("subscribe")[cust.seg]
    first_visit = np.full(n, np.inf)
    np.minimum.at(first_visit, visits.cust, visits.day)
    start = np.where(cust.base, 0, cal.season_of(np.minimum(first_visit, cal.horizon - 1)) + 1)
    start = np.where(wants, start, cfg.n_seasons)
    rows_c, rows_s, rows_first, rows_ren = [], [], [], []
    active = start == 0
    tenure = np.where(cust.base, 2, 0)
    for s in range(cfg.n_seasons):
        active |= start == s
        holders = np.flatnonzero(active)
        first = (tenure[holders] == 0) & ~cust.base[holders]
        p = np.where(first, SUB_RENEW_FIRST, SUB_RENEW_LATER)
        renew = rng.random(holders.size) < p
        rows_c.append(holders)
        rows_s.append(np.full(holders.size, s))
        rows_first.append(first)
        rows_ren.append(renew & (s < cfg.n_seasons - 1))
        tenure[holders] += 1
        active[holders[~renew]] = False
        start[holders[~renew]] = cfg.n_seasons  # no second spell
    c = np.concatenate(rows_c)
    m = len(c)
    party = np.where(rng.random(n) < 0.45, 1, 2)[c]  # alone or as a couple, every season
    n_perf = rng.integers(PACKAGE_MIN, PACKAGE_MAX + 1, size=m)
    return _Subscriptions(
        cust=c,
        season=np.concatenate(rows_s),
        first_year=np.concatenate(rows_first),
        renewed=np.concatenate(rows_ren),
        party=party,
        n_perf=n_perf,
    )


# ---------------------------------------------------------------------------
# Programme: productions and performances
# ---------------------------------------------------------------------------
@dataclass
class _Programme:
    """Productions and performances (performances sorted by start)."""

    prod_artform: np.ndarray
    prod_genre: np.ndarray  # index into GENRES[artform]
    prod_title: list[str]
    prod_venue: np.ndarray
    prod_factor: np.ndarray  # price multiplier
    perf_prod: np.ndarray
    perf_start: np.ndarray  # minutes since the period start
    perf_daytime: np.ndarray
    perf_cancelled: np.ndarray
    perf_season: np.ndarray

    @property
    def perf_artform(self) -> np.ndarray:
        """Artform of each performance."""
        return self.prod_artform[self.perf_prod]

    @property
    def perf_capacity(self) -> np.ndarray:
        """Seats of each performance."""
        return VENUE_CAPACITY[self.prod_venue[self.perf_prod]]


def _demand(cfg: SynthConfig, visits: _Visits, subs: _Subscriptions) -> np.ndarray:
    """Tickets wanted per season, artform and daypart (evening 0, daytime 1)."""
    d = np.zeros((cfg.n_seasons, len(ARTFORMS), 2))
    np.add.at(d, (visits.season, visits.artform, visits.daytime.astype(np.int64)), visits.party)
    np.add.at(d, (subs.season, CL, 0), subs.party * subs.n_perf)
    return d


def _slots(cal: _Calendar, season: int, artform: int, daytime: bool) -> np.ndarray:
    """Candidate start times (minutes) of one artform's performances in one season."""
    a, b = cal.season_days[season], cal.season_days[season + 1]
    days = np.arange(a, b)
    wd = cal.weekday[a:b]
    month, dom = cal.month[a:b], cal.dom[a:b]
    dark = ((month == 12) & (dom == 25)) | ((month == 1) & (dom == 1))  # Christmas, New Year
    if daytime:
        days = days[(wd >= 5) & ~dark]
        times = DAYTIME_SLOTS.get(artform, DAYTIME_DEFAULT)
    else:
        days = days[(wd != 6) & ~dark]  # dark on Sundays
        times = (int(EVENING_START[artform]),)
    grid = days[:, None] * MINUTES_PER_DAY + np.array(times)[None, :]
    return grid.ravel()


def _title(rng: np.random.Generator, artform: int) -> tuple[str, str]:
    """A plausible production title and genre for an artform."""
    adj = ADJECTIVES[rng.integers(len(ADJECTIVES))]
    noun = NOUNS[rng.integers(len(NOUNS))]
    person = (
        f"{(FEMALE_NAMES + MALE_NAMES)[rng.integers(len(FEMALE_NAMES) * 2)]} "
        f"{LAST_NAMES[rng.integers(len(LAST_NAMES))]}"
    )
    pick = int(rng.integers(3))
    genres = GENRES[artform]
    genre = genres[rng.integers(len(genres))]
    if artform == TH:
        if pick == 0:
            play = CLASSIC_PLAYS[rng.integers(len(CLASSIC_PLAYS))]
            return play, "Shakespeare" if play in SHAKESPEARE else "Classic"
        title = f"The {adj} {noun}" if pick == 1 else f"{adj} {noun}"
        return title, ("Drama", "New Writing", "Comedy Drama")[rng.integers(3)]
    if artform == MU:
        return (f"{noun}! The Musical" if pick == 0 else f"{adj} {noun}: The Musical"), genre
    if artform == CL:
        w = int(rng.integers(len(WORKS)))
        return f"{COMPOSERS[rng.integers(len(COMPOSERS))]}: {WORKS[w]}", WORK_GENRES[w]
    if artform == CM:
        plural = noun + ("es" if noun.endswith(("s", "ch", "sh")) else "s")
        return (f"The {adj} {plural} Live" if pick else f"{adj} {noun} in Concert"), genre
    if artform == DA:
        return f"{adj} {noun}", genre
    if artform == CO:
        return f"{person}: {adj} {noun}", genre
    if artform == FA:
        return f"The {adj} {ANIMALS[rng.integers(len(ANIMALS))]}", genre
    if pick == 0:
        return f"In Conversation: {person}", "Author Talk"
    if pick == 1:
        return f"{noun} and {NOUNS[rng.integers(len(NOUNS))]}: A Lecture", "Lecture"
    return f"The Future of the {noun}: A Panel", "Panel"


def _build_programme(cfg: SynthConfig, cal: _Calendar, demand: np.ndarray) -> _Programme:
    """Size and schedule the programme so that planned occupancy is ``OCCUPANCY_TARGET``.

    Per season and artform: the number of productions follows the demand of the
    simulated visits (at least ``PROD_MIN``); each production gets a venue, then a run
    length scaled so that the seats of all runs match the demand at the target
    occupancy, and weekend daytime shows take the daytime share of the demand.
    Productions are dealt to parallel streams (stages) so that no stream is busy more
    than ``STREAM_SHARE`` of the season; within a stream each production plays a block
    of consecutive days, blocks follow each other with gaps laid out by the month
    weights (busy autumn and Christmas, quiet summer).
    """
    rng = _rng(cfg.seed, "programme")
    mean_cap = VENUE_PROBS @ VENUE_CAPACITY
    starts, prods, dayparts, p_art, p_venue = [], [], [], [], []
    n_prod = 0
    for s in range(cfg.n_seasons):
        first_day, last_day = cal.season_days[s], cal.season_days[s + 1]
        for a in range(len(ARTFORMS)):
            d_ev, d_dt = demand[s, a]
            total = d_ev + d_dt
            n_est = total / (OCCUPANCY_TARGET * mean_cap[a])
            k = max(int(PROD_MIN[a]), int(round(n_est / RUN_MEAN[a])))
            venue = _choose(rng, VENUE_PROBS, np.full(k, a)).astype(np.int64)
            cap = VENUE_CAPACITY[venue]
            r = rng.gamma(3.0, size=k)
            runs = np.maximum(1, np.ceil(r * total / OCCUPANCY_TARGET / (r @ cap)))
            runs = runs.astype(np.int64)
            n_dt = np.minimum(_systematic(rng, runs * (d_dt / max(total, 1.0))), runs)
            n_ev = runs - n_dt
            per_day = len(DAYTIME_SLOTS.get(a, DAYTIME_DEFAULT))
            days = np.maximum(
                np.ceil(n_ev * 7 / 6), np.ceil(n_dt / (2 * per_day)) * 7 - 1 * (n_dt > 0)
            ).astype(np.int64)
            days = np.maximum(days, np.where(n_dt > 0, 2, 1))
            streams = max(1, int(np.ceil(days.sum() / (STREAM_SHARE * (last_day - first_day)))))
            slots = (_slots(cal, s, a, daytime=False), _slots(cal, s, a, daytime=True))
            for st in range(streams):
                j = np.arange(st, k, streams)  # productions on this stream, in order
                open_day = _lay_blocks(rng, cal, first_day, last_day, days[j])
                for dp, counts in ((False, n_ev[j]), (True, n_dt[j])):
                    t, owner = _block_slots(slots[dp], open_day, days[j], counts)
                    starts.append(t)
                    dayparts.append(np.full(t.size, dp))
                    prods.append(n_prod + j[owner])
            p_art.append(np.full(k, a))
            p_venue.append(venue)
            n_prod += k
    perf_start = np.concatenate(starts)
    perf_prod = np.concatenate(prods)
    perf_daytime = np.concatenate(dayparts)
    prod_artform = np.concatenate(p_art)
    prod_venue = np.concatenate(p_venue)
    # Productions numbered by opening, performances by start time; productions left
    # without a performance (no room in the season) are dropped.
    used = np.zeros(n_prod, bool)
    used[perf_prod] = True
    opening = np.full(n_prod, np.iinfo(np.int64).max)
    np.minimum.at(opening, perf_prod, perf_start)
    prod_order = np.lexsort((np.arange(n_prod), opening))
    prod_order = prod_order[used[prod_order]]
    prod_rank = np.full(n_prod, -1, np.int64)
    prod_rank[prod_order] = np.arange(prod_order.size)
    perf_prod = prod_rank[perf_prod]
    prod_artform = prod_artform[prod_order]
    prod_venue = prod_venue[prod_order]
    opening = opening[prod_order]
    n_prod = prod_order.size
    order = np.lexsort((perf_prod, perf_start))
    perf_start, perf_prod, perf_daytime = perf_start[order], perf_prod[order], perf_daytime[order]
    named = [_title(rng, int(a)) for a in prod_artform]
    titles = [t for t, _ in named]
    genre = np.array([GENRES[a].index(g) for a, (_, g) in zip(prod_artform, named, strict=True)])
    # Christmas shows open in November or December; no Christmas show otherwise.
    open_month = cal.month[opening // MINUTES_PER_DAY]
    xmas = (prod_artform == FA) & (open_month >= 11)
    genre = np.where(xmas, 2, np.where((prod_artform == FA) & (genre == 2), 0, genre))
    factor = PRICE_FACTORS[rng.integers(len(PRICE_FACTORS), size=n_prod)]
    season = cal.season_of(perf_start // MINUTES_PER_DAY)
    cancelled = rng.random(perf_start.size) < CANCEL_RATE
    for s in range(cfg.n_seasons):  # at least one cancellation per season
        in_s = np.flatnonzero((season == s) & ~perf_daytime)
        if in_s.size and not cancelled[in_s].any():
            cancelled[in_s[rng.integers(in_s.size)]] = True
    return _Programme(
        prod_artform=prod_artform,
        prod_genre=genre,
        prod_title=titles,
        prod_venue=prod_venue,
        prod_factor=factor,
        perf_prod=perf_prod,
        perf_start=perf_start,
        perf_daytime=perf_daytime,
        perf_cancelled=cancelled,
        perf_season=season,
    )


def _lay_blocks(
    rng: np.random.Generator, cal: _Calendar, first_day: int, last_day: int, days: np.ndarray
) -> np.ndarray:
    """Opening days of consecutive runs of ``days`` days in one season, without overlap.

    Runs and random gaps are laid out in operational time (uniform), mapped to the
    calendar through the month weights, then pushed later where they would overlap.
    """
    k = days.size
    free = max(float(last_day - first_day - days.sum()), 0.0)
    gaps = rng.dirichlet(np.full(k + 1, 1.5)) * free
    u = first_day + np.cumsum(np.r_[gaps[0], gaps[1:k] + days[:-1]])
    start = np.floor(cal.warp(u)).astype(np.int64)
    sunday = cal.weekday[np.minimum(start, cal.horizon - 1)] == 6
    start += np.where(sunday, rng.integers(1, 7, size=k), 0)  # nothing opens on a Sunday
    before = np.r_[0, np.cumsum(days)[:-1]]
    return before + np.maximum.accumulate(start - before)


def _block_slots(
    slots: np.ndarray, open_day: np.ndarray, days: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``counts[j]`` slots spread evenly over block ``j`` (open_day, open_day + days).

    Returns
    -------
    start, owner : numpy.ndarray
        Start minute of each picked slot and the block it belongs to.
    """
    lo = np.searchsorted(slots, open_day * MINUTES_PER_DAY)
    hi = np.searchsorted(slots, (open_day + days) * MINUTES_PER_DAY)
    n = np.minimum(counts, hi - lo)
    owner, i = _repeat_index(n)
    pos = lo[owner] + (i * (hi - lo)[owner]) // np.maximum(n[owner], 1)
    return slots[pos].astype(np.int64), owner


def _systematic(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Round non-negative reals so every partial sum stays within one of the exact sum."""
    cum = np.floor(np.cumsum(x) + rng.random())
    return np.diff(np.r_[0.0, cum]).astype(np.int64)


# ---------------------------------------------------------------------------
# Orders: visits meet performances
# ---------------------------------------------------------------------------
def _package_performances(
    cfg: SynthConfig, cal: _Calendar, prog: _Programme, subs: _Subscriptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchase time and performances of every subscription package.

    A package is bought in the first three weeks of its season and holds ``n_perf``
    classical evening performances spread over the rest of the season (stratified
    picks, so no performance twice).

    Returns
    -------
    purchase : numpy.ndarray
        Purchase minute of each package (before the time-of-day adjustment).
    pkg_idx, perf_idx : numpy.ndarray
        One row per package performance.
    """
    rng = _rng(cfg.seed, "packages")
    m = len(subs.cust)
    day = cal.season_days[subs.season] + rng.integers(0, 21, size=m)
    purchase = day * MINUTES_PER_DAY + rng.integers(0, MINUTES_PER_DAY, size=m)
    cand = np.flatnonzero((prog.perf_artform == CL) & ~prog.perf_daytime)
    cand_start = prog.perf_start[cand]
    lo = np.searchsorted(cand_start, purchase + 2 * MINUTES_PER_DAY)
    season_end = cal.season_days[subs.season + 1] * MINUTES_PER_DAY
    hi = np.searchsorted(cand_start, season_end)
    n_perf = np.minimum(subs.n_perf, np.maximum(hi - lo, 0))
    subs.n_perf = n_perf
    pkg, j = _repeat_index(n_perf)
    u = (j + rng.random(pkg.size)) / n_perf[pkg]
    pos = lo[pkg] + np.floor(u * (hi[pkg] - lo[pkg])).astype(np.int64)
    return purchase, pkg, cand[pos]


def _assign_performances(
    cfg: SynthConfig, prog: _Programme, visits: _Visits, pkg_perf: np.ndarray, pkg_party: np.ndarray
) -> np.ndarray:
    """Map each single visit to a performance of its season, artform and daypart.

    Within each group visits are ordered by intended day and laid along the group's
    performances in proportion to the seats left after the subscription packages,
    times a popularity factor (never beyond ``MAX_FILL`` of the seats). Monotone in
    time, so each customer's visits keep their order and spacing up to the gaps
    between performances. Daytime demand beyond the daytime seats moves to evenings.
    """
    rng = _rng(cfg.seed, "assign")
    n_art = len(ARTFORMS)
    n_groups = cfg.n_seasons * n_art * 2
    pgroup = (prog.perf_season * n_art + prog.perf_artform) * 2 + prog.perf_daytime
    vgroup = (visits.season * n_art + visits.artform) * 2 + visits.daytime
    party = visits.party.astype(float)
    pkg_load = np.bincount(pkg_perf, weights=pkg_party, minlength=pgroup.size)
    room = np.maximum(prog.perf_capacity - pkg_load, 0.0)
    # Visits beyond a daypart's seats go to the other daypart if it has seats to spare.
    want = np.bincount(vgroup, weights=party, minlength=n_groups)
    seats = np.bincount(pgroup, weights=room, minlength=n_groups)
    excess = np.maximum(want - MAX_FILL * seats, 0)
    spare = np.maximum(MAX_FILL * seats - want, 0)
    moved = np.minimum(excess, spare[np.arange(n_groups) ^ 1])
    move = moved / np.maximum(want, 1e-9)
    flip = rng.random(vgroup.size) < move[vgroup]
    vgroup = np.where(flip, vgroup ^ 1, vgroup)
    vgroup = np.where(seats[vgroup] > 0, vgroup, vgroup ^ 1)  # no seats at all: the other
    want = np.bincount(vgroup, weights=party, minlength=n_groups)
    # Popularity, capped so no performance sells beyond MAX_FILL of its seats.
    w = room * np.clip(rng.lognormal(0.0, 0.3, size=room.size), 0.5, 1.6)
    for _ in range(4):
        wsum = np.bincount(pgroup, weights=w, minlength=n_groups)
        limit = MAX_FILL * room * wsum[pgroup] / np.maximum(want[pgroup], 1e-9)
        w = np.minimum(w, limit)
    w = np.maximum(w, 1e-6)
    porder = np.lexsort((prog.perf_start, pgroup))
    key_p = _group_quantiles(pgroup[porder], w[porder], centre=False)
    minute = np.minimum(visits.day * MINUTES_PER_DAY, 2**31 - 1).astype(np.int64)
    vorder = np.argsort((vgroup.astype(np.int64) << 32) | minute, kind="stable")
    q = _group_quantiles(vgroup[vorder], party[vorder], centre=True)
    pos = np.minimum(np.searchsorted(key_p, q, side="left"), porder.size - 1)
    perf = np.empty(vorder.size, np.int64)
    perf[vorder] = porder[pos]
    return perf


def _group_quantiles(group: np.ndarray, weight: np.ndarray, centre: bool) -> np.ndarray:
    """``group + `` cumulative weight share within the group (rows sorted by group).

    With ``centre`` the share is taken at the middle of each row's weight (visits);
    otherwise at its end (performances, the last one exactly ``group + 1``).
    """
    cw = np.cumsum(weight)
    first = np.r_[True, group[1:] != group[:-1]]
    gstart = np.maximum.accumulate(np.where(first, np.arange(cw.size), 0))
    before = np.where(gstart > 0, cw[np.maximum(gstart - 1, 0)], 0.0)
    last = np.flatnonzero(np.r_[first[1:], True])
    total = (cw - before)[last][np.cumsum(first) - 1]
    within = cw - before - (weight / 2 if centre else 0.0)
    share = np.minimum(within / total, 1 - 1e-9) if centre else within / total
    out = group + share
    if not centre:
        out[last] = group[last] + 1.0
    return out


@dataclass
class _Orders:
    """Every booking, numbered in order of purchase time."""

    cust: np.ndarray
    minute: np.ndarray  # purchase time
    channel: np.ndarray
    band: np.ndarray
    perf: np.ndarray  # performance of single orders (-1 for packages)
    party: np.ndarray
    comp: np.ndarray
    package: np.ndarray  # bool
    sub: np.ndarray  # index into the subscriptions of package orders (-1 for single orders)


def _purchase_minutes(
    rng: np.random.Generator, start: np.ndarray, lead_days: np.ndarray, channel: np.ndarray
) -> np.ndarray:
    """Purchase minute from performance start and lead time, at plausible hours.

    Web bookings fall between 07:00 and midnight, phone and box office between 10:00
    and 19:00. Nothing is bought before the period start or after the performance.
    """
    p = start - np.round(lead_days * MINUTES_PER_DAY).astype(np.int64)
    early = p < 0
    p = np.where(early, (rng.random(p.size) * 0.9 * start).astype(np.int64), p)
    return np.maximum(_office_hours(rng, p, start, channel), 0)


def _office_hours(
    rng: np.random.Generator, p: np.ndarray, start: np.ndarray | None, channel: np.ndarray
) -> np.ndarray:
    """Move purchase minutes into the opening hours of their channel."""
    day, m = np.divmod(p, MINUTES_PER_DAY)
    m = np.where(
        channel == WEB, 420 + m * 1020 // MINUTES_PER_DAY, 600 + m * 540 // MINUTES_PER_DAY
    )
    p = day * MINUTES_PER_DAY + m
    if start is not None:
        late = p > start - 5
        p = np.where(late, start - rng.integers(5, 90, size=p.size), p)
    return p


def _make_orders(
    cfg: SynthConfig,
    cust: _Customers,
    visits: _Visits,
    perf: np.ndarray,
    prog: _Programme,
    subs: _Subscriptions,
    pkg_minute: np.ndarray,
) -> _Orders:
    """Channel, price band, purchase time and comps of single and package orders.

    Orders are returned in purchase-time order, so that sales lines built order by order
    are already sorted by time (and sorting all lines is a cheap merge).
    """
    rng = _rng(cfg.seed, "orders")
    seg = cust.seg[visits.cust]
    n1 = seg.size
    channel = _choose(rng, _seg_table("channel"), seg)
    band = _choose(rng, _seg_table("band"), seg)
    lead = rng.lognormal(np.log(_seg_table("lead_days")[seg]), _seg_table("lead_sigma")[seg])
    lead = np.maximum(lead, 10 / MINUTES_PER_DAY)
    comp = rng.random(n1) < COMP_ORDER_RATE
    channel = np.where(comp, BOX, channel).astype(np.int8)
    start = prog.perf_start[perf]
    minute = _purchase_minutes(rng, start, lead, channel)
    sseg = cust.seg[subs.cust]
    s_channel = _choose(rng, _seg_table("channel"), sseg)
    s_band = np.where(rng.random(sseg.size) < 0.6, 0, 1).astype(np.int8)
    s_minute = _office_hours(rng, pkg_minute, None, s_channel)
    minute = np.concatenate([minute, s_minute])
    by_time = np.argsort(minute, kind="stable")
    return _Orders(
        cust=np.concatenate([visits.cust, subs.cust])[by_time],
        minute=minute[by_time],
        channel=np.concatenate([channel, s_channel])[by_time],
        band=np.concatenate([band, s_band])[by_time],
        perf=np.concatenate([perf, np.full(sseg.size, -1)])[by_time],
        party=np.concatenate([visits.party, subs.party])[by_time],
        comp=np.concatenate([comp, np.zeros(sseg.size, bool)])[by_time],
        package=np.r_[np.zeros(n1, bool), np.ones(sseg.size, bool)][by_time],
        sub=np.r_[np.full(n1, -1), np.arange(sseg.size)][by_time],
    )


# ---------------------------------------------------------------------------
# Sales lines
# ---------------------------------------------------------------------------
_LINE_FIELDS = (
    "okey",
    "cust",
    "minute",
    "channel",
    "item",
    "perf",
    "band",
    "ttype",
    "qty",
    "list_p",
    "paid_p",
    "comp",
    "status",
    "parent",
)


def _lines(n: int, **cols: Any) -> dict[str, np.ndarray]:
    """A block of ``n`` sales lines; missing fields get neutral defaults."""
    defaults = {
        "perf": -1,
        "band": -1,
        "ttype": -1,
        "qty": 1,
        "comp": False,
        "status": ST_SOLD,
        "parent": -1,
    }
    out = {}
    for f in _LINE_FIELDS:
        v = cols.get(f, defaults.get(f))
        dtype = _LINE_DTYPES.get(f, np.int32)
        out[f] = (
            np.full(n, v, dtype) if np.ndim(v) == 0 else np.asarray(v).astype(dtype, copy=False)
        )
    return out


_LINE_DTYPES = {"okey": np.int64, "channel": np.int8, "item": np.int8, "band": np.int8}
_LINE_DTYPES.update({"ttype": np.int8, "qty": np.int16, "comp": np.int8, "status": np.int8})


def _concat_lines(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate line blocks field by field (compact integer types)."""
    return {f: np.concatenate([b[f] for b in blocks]) for f in _LINE_FIELDS}


def _ticket_prices(
    prog: _Programme, perf: np.ndarray, band: np.ndarray, ttype: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """List and paid pence of ticket lines, looked up per production, band and ticket type."""
    list_t, paid_t = _price_tables(prog)
    prod = prog.perf_prod[perf]
    return list_t[prod, band], paid_t[prod, band, ttype]


def _price_tables(prog: _Programme) -> tuple[np.ndarray, np.ndarray]:
    """List price per (production, band) and paid price per (production, band, ticket type).

    List prices are the artform's band price times the production's price factor, to the
    nearest 50p; concessions, under-18s and subscriptions pay a share of it (to 50p),
    under-26s a flat price (never above the list price), comps nothing.
    """
    list_t = _round_to(LIST_PRICE[prog.prod_artform] * prog.prod_factor[:, None], 50)
    paid_t = np.repeat(list_t[:, :, None], len(TICKET_TYPES), axis=2)
    paid_t[:, :, CONC] = _round_to(list_t * CONCESSION_FACTOR, 50)
    paid_t[:, :, U18] = _round_to(list_t * UNDER18_FACTOR, 50)
    paid_t[:, :, U26] = np.minimum(list_t, UNDER26_PENCE)
    paid_t[:, :, SUBT] = _round_to(list_t * SUBSCRIPTION_FACTOR, 50)
    paid_t[:, :, COMP] = 0
    return list_t, paid_t


def _sale_lines(
    cfg: SynthConfig,
    cust: _Customers,
    prog: _Programme,
    orders: _Orders,
    pkg_idx: np.ndarray,
    pkg_perf: np.ndarray,
) -> dict[str, np.ndarray]:
    """Sold lines of every order: subscription, tickets, fees, merchandise, vouchers, voids."""
    rng = _rng(cfg.seed, "sale-lines")
    n_orders = orders.cust.size
    okey = np.arange(n_orders)
    single = np.flatnonzero(~orders.package)
    package = np.flatnonzero(orders.package)
    blocks = []
    # Subscription lines (one per package, no performance, no money).
    blocks.append(
        _lines(
            package.size,
            okey=package,
            cust=orders.cust[package],
            minute=orders.minute[package],
            channel=orders.channel[package],
            item=IT_SUB,
            list_p=0,
            paid_p=0,
        )
    )
    # Ticket lines of single orders: one per seat.
    o, j = _repeat_index(orders.party[single])
    o = single[o]
    seg = cust.seg[orders.cust[o]]
    ttype = _choose(rng, _seg_table("ticket"), seg).astype(np.int64)
    is_family = seg == SEGMENT_NAMES.index("family_weekenders")
    ttype = np.where(is_family, np.where(j < 2, FULL, U18), ttype)
    ttype = np.where(orders.comp[o], COMP, ttype)
    list_p, paid = _ticket_prices(prog, orders.perf[o], orders.band[o], ttype)
    blocks.append(
        _lines(
            o.size,
            okey=o,
            cust=orders.cust[o],
            minute=orders.minute[o],
            channel=orders.channel[o],
            item=IT_TICKET,
            perf=orders.perf[o],
            band=orders.band[o],
            ttype=ttype,
            list_p=list_p,
            paid_p=paid,
            comp=orders.comp[o],
        )
    )
    # Ticket lines of packages: party seats at each package performance.
    order_of_sub = np.empty(package.size, np.int64)
    order_of_sub[orders.sub[package]] = package
    pk = order_of_sub[pkg_idx]
    by_order = np.argsort(pk, kind="stable")  # keep the block in order (time) sequence
    pk, pperf = pk[by_order], pkg_perf[by_order]
    p2, _ = _repeat_index(orders.party[pk])
    pk, pperf = pk[p2], pperf[p2]
    tt = np.full(pk.size, SUBT)
    list_p, paid = _ticket_prices(prog, pperf, orders.band[pk], tt)
    blocks.append(
        _lines(
            pk.size,
            okey=pk,
            cust=orders.cust[pk],
            minute=orders.minute[pk],
            channel=orders.channel[pk],
            item=IT_TICKET,
            perf=pperf,
            band=orders.band[pk],
            ttype=tt,
            list_p=list_p,
            paid_p=paid,
        )
    )
    # Booking fee on every paid online order.
    f = okey[(orders.channel == WEB) & ~orders.comp]
    blocks.append(
        _lines(
            f.size,
            okey=f,
            cust=orders.cust[f],
            minute=orders.minute[f],
            channel=WEB,
            item=IT_FEE,
            list_p=FEE_PENCE,
            paid_p=FEE_PENCE,
        )
    )
    # Programmes and gift vouchers.
    oseg = cust.seg[orders.cust]
    m = okey[(rng.random(n_orders) < _seg_table("merch")[oseg]) & ~orders.package]
    qty = np.where(rng.random(m.size) < MERCH_QTY2, 2, 1)
    blocks.append(
        _lines(
            m.size,
            okey=m,
            cust=orders.cust[m],
            minute=orders.minute[m],
            channel=orders.channel[m],
            item=IT_MERCH,
            qty=qty,
            list_p=qty * PROGRAMME_PENCE,
            paid_p=qty * PROGRAMME_PENCE,
        )
    )
    v = okey[rng.random(n_orders) < VOUCHER_RATE]
    amount = VOUCHER_PENCE[rng.integers(VOUCHER_PENCE.size, size=v.size)]
    blocks.append(
        _lines(
            v.size,
            okey=v,
            cust=orders.cust[v],
            minute=orders.minute[v],
            channel=orders.channel[v],
            item=IT_VOUCHER,
            list_p=amount,
            paid_p=amount,
        )
    )
    # A few voided lines (a seat added, then voided before payment).
    vd = single[rng.random(single.size) < VOID_ORDER_RATE]
    list_p, paid = _ticket_prices(prog, orders.perf[vd], orders.band[vd], np.full(vd.size, FULL))
    blocks.append(
        _lines(
            vd.size,
            okey=vd,
            cust=orders.cust[vd],
            minute=orders.minute[vd],
            channel=orders.channel[vd],
            item=IT_TICKET,
            perf=orders.perf[vd],
            band=orders.band[vd],
            ttype=FULL,
            list_p=list_p,
            paid_p=paid,
            status=ST_VOID,
        )
    )
    return _concat_lines(blocks)


def _reversals(
    cfg: SynthConfig, prog: _Programme, orders: _Orders, sold: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Returns (random orders and every ticket of a cancelled performance) and exchanges.

    A return is a new line with status returned, negative amounts and ``parent`` = the
    row it reverses; an exchange adds an exchanged line (negative) and a new sold ticket
    for another performance of the same production, both pointing at the original.
    """
    rng = _rng(cfg.seed, "reversals")
    n_orders = orders.cust.size
    is_ticket = (sold["item"] == IT_TICKET) & (sold["status"] == ST_SOLD)
    tix = np.flatnonzero(is_ticket)
    perf = sold["perf"][tix]
    cancelled = prog.perf_cancelled[perf]
    # Random returns and exchanges, whole single orders, not on cancelled performances.
    u = rng.random(n_orders)
    ret_order = (u < RETURN_ORDER_RATE) & ~orders.package
    exch_order = (u >= RETURN_ORDER_RATE) & (u < RETURN_ORDER_RATE + EXCHANGE_ORDER_RATE)
    exch_order &= ~orders.package
    ok = orders.perf >= 0
    ok[ok] = ~prog.perf_cancelled[orders.perf[ok]]
    ret_order &= ok
    exch_order &= ok
    # Exchange target: the next (else previous) performance of the same production.
    n_perf = prog.perf_start.size
    by_prod = np.lexsort((prog.perf_start, prog.perf_prod))
    rank = np.empty(n_perf, np.int64)
    rank[by_prod] = np.arange(n_perf)
    target = np.full(n_orders, -1)
    eo = np.flatnonzero(exch_order)
    r = rank[orders.perf[eo]]
    for step in (1, -1):
        cand_r = np.clip(r + step, 0, n_perf - 1)
        cand = by_prod[cand_r]
        good = (
            (prog.perf_prod[cand] == prog.perf_prod[orders.perf[eo]])
            & (cand != orders.perf[eo])
            & ~prog.perf_cancelled[cand]
            & (prog.perf_start[cand] > orders.minute[eo] + MINUTES_PER_DAY)
            & (target[eo] < 0)
        )
        target[eo[good]] = cand[good]
    # No exchange into a performance that would go beyond MAX_FILL of its seats.
    load = np.bincount(sold["perf"][tix], minlength=n_perf)
    moved = target[eo] >= 0
    inflow = np.bincount(target[eo][moved], weights=orders.party[eo][moved], minlength=n_perf)
    full = load + inflow > MAX_FILL * prog.perf_capacity
    exch_order[eo[(target[eo] < 0) | full[np.maximum(target[eo], 0)]]] = False
    target[~exch_order] = -1
    # Time of each order's return or exchange.
    first_start = np.where(
        orders.perf >= 0, prog.perf_start[np.maximum(orders.perf, 0)], orders.minute
    )
    limit = np.where(target >= 0, np.minimum(first_start, prog.perf_start[target]), first_start)
    when = orders.minute + (0.1 + 0.8 * rng.random(n_orders)) * (limit - orders.minute)
    when = np.maximum(when.astype(np.int64), orders.minute + 1)
    # Cancellation: each cancelled performance is called off 0.2-3 days before it starts.
    cancel_at = prog.perf_start - (0.2 + 2.8 * rng.random(n_perf)) * MINUTES_PER_DAY
    okey = sold["okey"][tix]
    rows_ret = tix[ret_order[okey] & ~cancelled]
    rows_can = tix[cancelled]
    rows_exc = tix[exch_order[okey] & ~cancelled]
    t_ret = when[sold["okey"][rows_ret]]
    pc_ = sold["perf"][rows_can]
    t_can = np.maximum(cancel_at[pc_].astype(np.int64), sold["minute"][rows_can] + 30)
    t_can = np.minimum(t_can, np.maximum(prog.perf_start[pc_] - 1, sold["minute"][rows_can] + 1))
    t_exc = when[sold["okey"][rows_exc]]
    # Order keys of the new transactions.
    nk = n_orders
    k_ret = nk + np.unique(sold["okey"][rows_ret], return_inverse=True)[1]
    nk = int(k_ret.max(initial=nk - 1)) + 1
    ck = sold["okey"][rows_can] * n_perf + pc_
    k_can = nk + np.unique(ck, return_inverse=True)[1]
    nk = int(k_can.max(initial=nk - 1)) + 1
    k_exc = nk + np.unique(sold["okey"][rows_exc], return_inverse=True)[1]
    chan = rng.choice(3, size=n_orders, p=[0.5, 0.35, 0.15]).astype(np.int64)
    blocks = []
    for rows, when_, keys, status in (
        (rows_ret, t_ret, k_ret, ST_RET),
        (rows_can, t_can, k_can, ST_RET),
        (rows_exc, t_exc, k_exc, ST_EXCH),
    ):
        blocks.append(_reverse(sold, rows, when_, keys, status, chan[sold["okey"][rows]]))
    new = _lines(
        rows_exc.size,
        okey=k_exc,
        cust=sold["cust"][rows_exc],
        minute=t_exc,
        channel=chan[sold["okey"][rows_exc]],
        item=IT_TICKET,
        perf=target[sold["okey"][rows_exc]],
        band=sold["band"][rows_exc],
        ttype=sold["ttype"][rows_exc],
        list_p=sold["list_p"][rows_exc],
        paid_p=sold["paid_p"][rows_exc],
        comp=sold["comp"][rows_exc],
        parent=rows_exc,
    )
    blocks.append(new)
    return _concat_lines(blocks)


def _reverse(
    sold: dict[str, np.ndarray],
    rows: np.ndarray,
    minute: np.ndarray,
    keys: np.ndarray,
    status: int,
    channel: np.ndarray,
) -> dict[str, np.ndarray]:
    """Lines reversing ``rows`` of ``sold``: same ticket, negative amounts, new order."""
    return _lines(
        rows.size,
        okey=keys,
        cust=sold["cust"][rows],
        minute=minute,
        channel=channel,
        item=sold["item"][rows],
        perf=sold["perf"][rows],
        band=sold["band"][rows],
        ttype=sold["ttype"][rows],
        list_p=-sold["list_p"][rows],
        paid_p=-sold["paid_p"][rows],
        comp=sold["comp"][rows],
        status=status,
        parent=rows,
    )


def _finalise_lines(lines: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sort lines by time and order, number them, and point parents at Line IDs."""
    key = lines["minute"].astype(np.int64) * (1 << 32) + lines["okey"]
    order = np.argsort(key, kind="stable")
    out = {f: v[order] for f, v in lines.items()}
    n = order.size
    line_id = LINE_ID_START + np.arange(n)
    new_pos = np.empty(n, np.int64)
    new_pos[order] = np.arange(n)
    parent = out["parent"]
    out["parent_id"] = np.where(parent >= 0, LINE_ID_START + new_pos[np.maximum(parent, 0)], -1)
    changed = np.r_[True, out["okey"][1:] != out["okey"][:-1]]
    out["order_id"] = ORDER_ID_START + np.cumsum(changed) - 1
    out["line_id"] = line_id
    return out


# ---------------------------------------------------------------------------
# Other exports
# ---------------------------------------------------------------------------
def _standing(lines: dict[str, np.ndarray]) -> np.ndarray:
    """Mask of ticket lines that stood (sold, not reversed)."""
    reversed_ids = lines["parent_id"][(lines["status"] == ST_RET) | (lines["status"] == ST_EXCH)]
    gone = np.isin(lines["line_id"], reversed_ids)
    return (lines["item"] == IT_TICKET) & (lines["status"] == ST_SOLD) & ~gone


def _scans(cfg: SynthConfig, lines: dict[str, np.ndarray], prog: _Programme) -> dict[str, Any]:
    """Door scans of ~92% of the tickets that stood, 15-45 minutes before the start."""
    rng = _rng(cfg.seed, "scans")
    stood = np.flatnonzero(_standing(lines))
    stood = stood[~prog.perf_cancelled[lines["perf"][stood]]]
    scanned = stood[rng.random(stood.size) < SCAN_RATE]
    minute = prog.perf_start[lines["perf"][scanned]] - rng.integers(15, 46, size=scanned.size)
    order = np.argsort(minute, kind="stable")
    scanned, minute = scanned[order], minute[order]
    return {
        "line_id": lines["line_id"][scanned],
        "cust": lines["cust"][scanned],
        "perf": lines["perf"][scanned],
        "minute": minute,
    }


@dataclass
class _People:
    """Customer records (internal order) and a few derived dates."""

    first_minute: np.ndarray  # first purchase minute of each customer
    created_day: np.ndarray  # day offset of record creation (negative: before the period)
    anonymised: np.ndarray


def _people(cfg: SynthConfig, cust: _Customers, orders: _Orders, cal: _Calendar) -> _People:
    """Record creation dates and anonymisation flags."""
    rng = _rng(cfg.seed, "people")
    n = cust.seg.size
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, orders.cust, orders.minute)
    created = first // MINUTES_PER_DAY
    back = (cal.start - np.datetime64("2008-01-01")).astype(np.int64)
    created = np.where(cust.base, -rng.integers(30, back, size=n), created)
    anonymised = rng.random(n) < ANONYMISED_SHARE
    return _People(first_minute=first, created_day=created, anonymised=anonymised)


def _memberships(
    cfg: SynthConfig, cust: _Customers, cal: _Calendar, people: _People
) -> dict[str, np.ndarray]:
    """Annual Friends terms: join, renew (first-year or later rate), sometimes upgrade.

    Existing members' first term in the export is a renewal that started in the year
    before the period; new members join within six months of their first visit.
    """
    rng = _rng(cfg.seed, "memberships")
    n = cust.seg.size
    joins = rng.random(n) < _seg_table("member")[cust.seg]
    c = np.flatnonzero(joins)
    level = _choose(rng, _seg_table("member_level"), cust.seg[c]).astype(np.int64)
    base = cust.base[c]
    start = np.where(
        base,
        -rng.integers(1, 366, size=c.size),
        people.first_minute[c] // MINUTES_PER_DAY + rng.integers(0, 181, size=c.size),
    )
    keep = start < cal.horizon
    c, level, base, start = c[keep], level[keep], base[keep], start[keep]
    rows = {k: [] for k in ("cust", "start", "end", "level", "renewal", "renewed", "first")}
    renewal = base.copy()
    first = ~base
    for _ in range(cfg.n_seasons + 2):
        if c.size == 0:
            break
        end = _add_years(cal, start, 1) - 1
        p = np.where(first, MEMBER_RENEW_FIRST, MEMBER_RENEW_LATER)
        renew = rng.random(c.size) < p
        for k, v in (
            ("cust", c),
            ("start", start),
            ("end", end),
            ("level", level),
            ("renewal", renewal),
            ("first", first),
        ):
            rows[k].append(v)
        nxt = (
            end
            + 1
            + np.where(rng.random(c.size) < MEMBER_LATE_RENEWAL, rng.integers(1, 31, c.size), 0)
        )
        go = renew & (nxt < cal.horizon)
        rows["renewed"].append(np.where(end < cal.horizon, renew, -1))
        upgrade = rng.random(c.size) < MEMBER_UPGRADE
        level = np.minimum(level + upgrade, len(MEMBER_LEVELS) - 1)
        c, start, level = c[go], nxt[go], level[go]
        renewal = np.ones(c.size, bool)
        first = np.zeros(c.size, bool)
    out = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in rows.items()}
    order = np.lexsort((out["cust"], out["start"]))
    return {k: v[order] for k, v in out.items()}


def _add_years(cal: _Calendar, day: np.ndarray, years: int) -> np.ndarray:
    """Day offsets ``years`` calendar years later (29 February becomes 28 February)."""
    d = cal.start + day.astype("timedelta64[D]")
    return (_shift_month_day(d, years) - cal.start).astype(np.int64)


def _shift_month_day(d: np.ndarray, years: int) -> np.ndarray:
    """Same month and day ``years`` later (29 February -> 28 February)."""
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    month_in_year = (m - y.astype("datetime64[M]")).astype(np.int64)
    dom = (d - m.astype("datetime64[D]")).astype(np.int64)
    ny = y + np.timedelta64(years, "Y")
    nm = ny.astype("datetime64[M]") + month_in_year
    month_len = ((nm + 1).astype("datetime64[D]") - nm.astype("datetime64[D]")).astype(np.int64)
    return nm.astype("datetime64[D]") + np.minimum(dom, month_len - 1)


def _donations(
    cfg: SynthConfig, cust: _Customers, cal: _Calendar, people: _People, last_minute: np.ndarray
) -> dict[str, np.ndarray]:
    """Gifts from donors, spread over the time they are engaged."""
    rng = _rng(cfg.seed, "donations")
    n = cust.seg.size
    donor = np.flatnonzero(rng.random(n) < _seg_table("donor")[cust.seg])
    seg = cust.seg[donor]
    a = np.maximum(people.first_minute[donor] // MINUTES_PER_DAY, 0)
    a = np.where(cust.base[donor], 0, a)
    b = np.minimum(last_minute[donor] // MINUTES_PER_DAY + 365, cal.horizon - 1)
    b = np.maximum(b, a + 1)
    years = (b - a) / YEAR_DAYS
    k = np.maximum(rng.poisson(_seg_table("gifts_per_year")[seg] * years), 1)
    d, _ = _repeat_index(k)
    day = a[d] + (rng.random(d.size) * (b[d] - a[d])).astype(np.int64)
    sseg = seg[d]
    pounds = rng.lognormal(np.log(_seg_table("gift_median")[sseg]), _seg_table("gift_sigma")[sseg])
    step = np.where(pounds >= 500, 5000, np.where(pounds >= 50, 500, 100))
    pence = np.maximum(_round_to(pounds * 100 / step, 1) * step, 500)
    fund = rng.choice(len(FUNDS), size=d.size, p=FUND_PROBS)
    order = np.lexsort((donor[d], day))
    return {
        "cust": donor[d][order],
        "day": day[order],
        "pence": pence[order],
        "fund": fund[order],
    }


def _campaign_of_day(cal: _Calendar, day: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Appeal campaign of each gift date: year-end and spring appeals, else general."""
    d = cal.start + day.astype("timedelta64[D]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = cal.month[np.clip(day, 0, cal.horizon - 1)]
    y0 = int(year.min(initial=cal.start.astype("datetime64[Y]").astype(np.int64) + 1970))
    years = int(year.max(initial=y0)) - y0 + 1
    labels = ["General Giving"]
    labels += [f"Year-End Appeal {y0 + k}" for k in range(years)]
    labels += [f"Spring Appeal {y0 + k}" for k in range(years)]
    code = np.zeros(day.size, np.int64)
    code = np.where(month >= 11, 1 + year - y0, code)
    code = np.where((month == 3) | (month == 4), 1 + years + year - y0, code)
    return code, labels


def _month_label_codes(
    cal: _Calendar, minute: np.ndarray, prefix: str
) -> tuple[np.ndarray, list[str]]:
    """Code per row of '<prefix> <Month YYYY>' labels, one label per month of the period."""
    months = np.arange(
        cal.start.astype("datetime64[M]"),
        (cal.start + np.timedelta64(cal.horizon, "D")).astype("datetime64[M]") + 1,
    )
    labels = [f"{prefix} {m.astype(object).strftime('%B %Y')}" for m in months]
    d = cal.start + (minute // MINUTES_PER_DAY).astype("timedelta64[D]")
    code = (d.astype("datetime64[M]") - months[0]).astype(np.int64)
    return np.clip(code, 0, len(labels) - 1), labels


@dataclass
class _ShowVisits:
    """Each customer's booked performances (one row per customer and performance).

    The unit of pre-show emails, clicks before booking and survey invitations.
    """

    cust: np.ndarray
    perf: np.ndarray
    minute: np.ndarray  # purchase
    web: np.ndarray
    first: np.ndarray  # the customer's first booking


def _visit_rows(lines: dict[str, np.ndarray]) -> _ShowVisits:
    """Distinct (customer, performance) pairs of sold tickets, with their first booking.

    Lines are in time order, so the first line of each pair is its earliest booking and
    the first pair of each customer is the customer's first booking.
    """
    sold = np.flatnonzero((lines["item"] == IT_TICKET) & (lines["status"] == ST_SOLD))
    # Seats of one order at one performance are adjacent: keep the first of each run.
    same = (lines["order_id"][sold][1:] == lines["order_id"][sold][:-1]) & (
        lines["perf"][sold][1:] == lines["perf"][sold][:-1]
    )
    sold = sold[np.r_[True, ~same]]
    key = lines["cust"][sold].astype(np.int64) * (1 << 32) + lines["perf"][sold]
    _, idx = np.unique(key, return_index=True)  # sorted by customer, then performance
    rows = sold[np.sort(idx)]  # back to time order
    cust = lines["cust"][rows]
    _, first_idx = np.unique(cust, return_index=True)
    first = np.zeros(rows.size, bool)
    first[first_idx] = True
    minute = lines["minute"][rows]
    return _ShowVisits(cust, lines["perf"][rows], minute, lines["channel"][rows] == WEB, first)


def _interactions(
    cfg: SynthConfig,
    cust: _Customers,
    cal: _Calendar,
    prog: _Programme,
    visits: _ShowVisits,
    email_ok: np.ndarray,
    people: _People,
) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    """Email activity and web visits.

    Returns
    -------
    rows : dict
        ``cust``, ``minute``, ``kind`` (0 sent, 1 opened, 2 clicked, 3 unsubscribed,
        4 web visit), ``campaign`` (code), ``prod`` (-1 none).
    campaigns : list of str
        Campaign labels.
    unsub_minute : numpy.ndarray
        Minute each customer unsubscribed (max int64 if never).
    """
    rng = _rng(cfg.seed, "interactions")
    n_prod = len(prog.prod_title)
    labels = [f"Pre-show: {t}" for t in prog.prod_title]
    out: list[dict[str, np.ndarray]] = []
    start = prog.perf_start[visits.perf]
    prod = prog.perf_prod[visits.perf]
    ok = email_ok[visits.cust]
    # Pre-show email 1-3 days before (never before the booking), opened ~47%.
    sent_day = start // MINUTES_PER_DAY - rng.integers(1, 4, size=start.size)
    sent = sent_day * MINUTES_PER_DAY + rng.integers(600, 660, size=start.size)
    sent = np.where(sent <= visits.minute, (visits.minute + start) // 2, sent)
    has = ok & (start - visits.minute >= 120)
    s_idx = np.flatnonzero(has)
    out.append(_irows(visits.cust[s_idx], sent[s_idx], 0, prod[s_idx], prod[s_idx]))
    opened = s_idx[rng.random(s_idx.size) < PRESHOW_OPEN_RATE]
    o_min = sent[opened] + rng.integers(5, 24 * 60, size=opened.size)
    o_min = np.maximum(_office_hours(rng, o_min, None, np.full(opened.size, WEB)), sent[opened] + 1)
    o_min = np.minimum(o_min, start[opened] - 1)
    out.append(_irows(visits.cust[opened], o_min, 1, prod[opened], prod[opened]))
    # What's On clicks on the production 1-10 days before ~40% of repeat bookings.
    wo_base = n_prod
    click = np.flatnonzero(ok & ~visits.first & (rng.random(start.size) < CLICK_BEFORE_BOOKING))
    c_min = visits.minute[click] - rng.integers(MINUTES_PER_DAY, 10 * MINUTES_PER_DAY, click.size)
    c_min = _office_hours(rng, c_min, visits.minute[click] - 60, np.full(click.size, WEB))
    code, wo_labels = _month_label_codes(cal, c_min, "What's On")
    out.append(_irows(visits.cust[click], c_min, 2, wo_base + code, prod[click]))
    labels += wo_labels
    # Web visits before online bookings (no consent needed).
    web = np.flatnonzero(visits.web & (rng.random(start.size) < WEB_VISIT_BEFORE_ONLINE))
    w_min = visits.minute[web] - rng.integers(5, 3 * MINUTES_PER_DAY, web.size)
    w_min = _office_hours(rng, w_min, visits.minute[web] - 1, np.full(web.size, WEB))
    out.append(_irows(visits.cust[web], w_min, 4, -1, prod[web]))
    # Window shoppers: 2-3 clicks on one production within a week, no booking.
    shoppers = np.flatnonzero(email_ok & (rng.random(email_ok.size) < WINDOW_SHOPPER_RATE))
    lo = np.maximum(people.first_minute[shoppers], 0)
    t0 = lo + (rng.random(shoppers.size) * (cal.horizon * MINUTES_PER_DAY - lo)).astype(np.int64)
    opening = np.full(n_prod, np.iinfo(np.int64).max)
    np.minimum.at(opening, prog.perf_prod, prog.perf_start)
    by_open = np.argsort(opening, kind="stable")
    nxt = np.minimum(np.searchsorted(opening[by_open], t0 + 7 * MINUTES_PER_DAY), n_prod - 1)
    ws_prod = by_open[nxt]
    k = rng.integers(2, 4, size=shoppers.size)
    r, _ = _repeat_index(k)
    ws_min = t0[r] + rng.integers(0, 7 * MINUTES_PER_DAY, size=r.size)
    ws_min = _office_hours(rng, ws_min, None, np.full(r.size, WEB))
    code, _ = _month_label_codes(cal, ws_min, "What's On")
    out.append(_irows(shoppers[r], ws_min, 2, wo_base + code, ws_prod[r]))
    # Newsletters to consented customers who came in the previous twelve months.
    nl_base = len(labels)
    nl_days = _newsletter_days(cal)
    by_time = np.argsort(visits.minute, kind="stable")
    v_min, v_cust = visits.minute[by_time], visits.cust[by_time]
    for j, day in enumerate(nl_days):
        m0 = day * MINUTES_PER_DAY + 9 * 60
        lo, hi = np.searchsorted(v_min, [m0 - 365 * MINUTES_PER_DAY, m0])
        recent = np.zeros(email_ok.size, bool)
        recent[v_cust[lo:hi]] = True
        who = np.flatnonzero(recent & email_ok)
        t = m0 + rng.integers(0, 30, size=who.size)
        out.append(_irows(who, t, 0, nl_base + j, -1))
        op = rng.random(who.size) < NEWSLETTER_OPEN_RATE
        t_op = t[op] + rng.integers(10, 3 * MINUTES_PER_DAY, size=int(op.sum()))
        t_op = np.maximum(_office_hours(rng, t_op, None, np.full(t_op.size, WEB)), t[op] + 1)
        out.append(_irows(who[op], t_op, 1, nl_base + j, -1))
        cl = op & (rng.random(who.size) < NEWSLETTER_CLICK_RATE / NEWSLETTER_OPEN_RATE)
        out.append(
            _irows(
                who[cl],
                t[cl] + rng.integers(15, 2 * MINUTES_PER_DAY, int(cl.sum())),
                2,
                nl_base + j,
                -1,
            )
        )
        un = rng.random(who.size) < UNSUBSCRIBE_RATE
        out.append(
            _irows(
                who[un],
                t[un] + rng.integers(10, MINUTES_PER_DAY, int(un.sum())),
                3,
                nl_base + j,
                -1,
            )
        )
    labels += [
        f"Newsletter {(cal.start + np.timedelta64(int(d), 'D')).astype(object).strftime('%B %Y')}"
        for d in nl_days
    ]
    rows = {k: np.concatenate([o[k] for o in out]) for k in out[0]}
    # Nothing after an unsubscribe except web visits and the unsubscribe itself.
    unsub = np.full(email_ok.size, np.iinfo(np.int64).max)
    is_un = rows["kind"] == 3
    np.minimum.at(unsub, rows["cust"][is_un], rows["minute"][is_un])
    keep = (rows["kind"] == 4) | (rows["minute"] < unsub[rows["cust"]])
    keep |= is_un & (rows["minute"] == unsub[rows["cust"]])
    keep &= (rows["minute"] >= 0) & (rows["minute"] < cal.horizon * MINUTES_PER_DAY)
    rows = {k: v[keep] for k, v in rows.items()}
    # One unsubscribe per customer (two at the same minute: keep one).
    un_rows = np.flatnonzero(rows["kind"] == 3)
    _, first_un = np.unique(rows["cust"][un_rows], return_index=True)
    drop = np.ones(rows["kind"].size, bool)
    drop[un_rows] = False
    drop[un_rows[first_un]] = True
    rows = {k: v[drop] for k, v in rows.items()}
    # In time order, then by customer (internal order = Customer ID order) and action.
    key = (rows["minute"] << 27) | (rows["cust"] << 3) | rows["kind"]
    order = np.argsort(key, kind="stable")
    rows = {k: v[order] for k, v in rows.items()}
    return _drop_repeats(rows, key[order]), labels, unsub


def _drop_repeats(rows: dict[str, np.ndarray], key: np.ndarray) -> dict[str, np.ndarray]:
    """Drop rows identical to an earlier row; ``rows`` are sorted by ``key``.

    Identical rows share ``key``, so only the few rows in runs of equal keys are compared.
    """
    tie = np.zeros(key.size, bool)
    tie[1:] = key[1:] == key[:-1]
    tie[:-1] |= tie[1:]
    cand = np.flatnonzero(tie)
    if cand.size == 0:
        return rows
    fields = [rows[k][cand] for k in sorted(rows)]
    by_value = np.lexsort((cand, *fields))
    same = np.ones(cand.size, bool)
    for f in fields:
        same[1:] &= f[by_value][1:] == f[by_value][:-1]
    same[0] = False
    keep = np.ones(key.size, bool)
    keep[cand[by_value[same]]] = False
    return {k: v[keep] for k, v in rows.items()}


def _irows(
    cust: np.ndarray, minute: np.ndarray, kind: int, campaign: Any, prod: Any
) -> dict[str, np.ndarray]:
    """A block of interaction rows."""
    n = np.asarray(cust).size
    return {
        "cust": np.asarray(cust, np.int64),
        "minute": np.asarray(minute, np.int64),
        "kind": np.full(n, kind, np.int64),
        "campaign": np.broadcast_to(np.asarray(campaign, np.int64), (n,)).copy(),
        "prod": np.broadcast_to(np.asarray(prod, np.int64), (n,)).copy(),
    }


def _newsletter_days(cal: _Calendar) -> np.ndarray:
    """Day offsets of every season's newsletters."""
    days = []
    first_year = int(cal.start.astype("datetime64[Y]").astype(np.int64)) + 1970
    for s in range(len(cal.season_days) - 1):
        for month, dom in NEWSLETTERS:
            year = first_year + s + (month < SEASON_START_MONTH)
            days.append((np.datetime64(date(year, month, dom)) - cal.start).astype(np.int64))
    return np.array(days, dtype=np.int64)


def _survey(
    cfg: SynthConfig, cust: _Customers, cal: _Calendar, prog: _Programme, visits: _ShowVisits
) -> dict[str, np.ndarray]:
    """Post-show survey answers from ~8% of visits to performances that took place."""
    rng = _rng(cfg.seed, "survey")
    ok = ~prog.perf_cancelled[visits.perf] & (rng.random(visits.cust.size) < SURVEY_RATE)
    i = np.flatnonzero(ok)
    minute = prog.perf_start[visits.perf[i]] + rng.integers(120, 3 * MINUTES_PER_DAY, i.size)
    shown = prog.perf_start[visits.perf[i]]
    minute = _office_hours(rng, minute, None, np.full(i.size, WEB))
    minute = np.where(minute < shown + 60, minute + MINUTES_PER_DAY, minute)
    keep = minute < cal.horizon * MINUTES_PER_DAY
    i, minute = i[keep], minute[keep]
    seg = cust.seg[visits.cust[i]]
    nps = _choose(rng, _seg_table("nps"), seg).astype(np.int64)
    intent = np.clip(np.round(nps / 2.2 + rng.normal(0, 0.7, i.size)), 1, 5).astype(np.int64)
    order = np.argsort(minute, kind="stable")
    return {
        "cust": visits.cust[i][order],
        "perf": visits.perf[i][order],
        "minute": minute[order],
        "nps": nps[order],
        "intent": intent[order],
    }


# ---------------------------------------------------------------------------
# Formatting (vectorised, straight into Arrow arrays)
# ---------------------------------------------------------------------------
def _fixed_strings(buf: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Arrow string array from an ``(n, width)`` uint8 buffer of ASCII characters."""
    n, width = buf.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    data = pa.py_buffer(np.ascontiguousarray(buf).ravel())
    if offsets[-1] < 2**31:
        arr = pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), data)
    else:
        arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), data)
    if mask is not None and mask.any():
        arr = pc.if_else(pa.array(~mask), arr, pa.scalar(None, pa.string()))
    return arr


def _digits(buf: np.ndarray, col: int, value: np.ndarray, width: int) -> None:
    """Write zero-padded decimal digits of ``value`` into ``buf[:, col:col+width]``."""
    v = value.astype(np.int64)
    for k in range(width - 1, -1, -1):
        buf[:, col + k] = 48 + v % 10
        v = v // 10


def _format_times(
    cal: _Calendar, minute: np.ndarray, fmt: str, mask: np.ndarray | None = None
) -> pa.Array:
    """Format minutes since the period start with a ``date_format`` from the template.

    ``%d/%m/%Y`` and ``%d/%m/%Y %H:%M`` are assembled from lookup tables of the days in
    range and of the 1,440 times of day (fast); any other format falls back to pandas
    ``strftime``. Entries where ``mask`` is true are empty.
    """
    minute = np.asarray(minute, dtype=np.int64)
    if mask is not None and mask.any():
        fill = minute[~mask].min() if (~mask).any() else 0
        minute = np.where(mask, fill, minute)
    if minute.size == 0:
        return pa.array([], pa.string())
    if fmt not in ("%d/%m/%Y", "%d/%m/%Y %H:%M"):
        import pandas as pd

        t = cal.start.astype("datetime64[m]") + minute.astype("timedelta64[m]")
        text = pd.Series(t).dt.strftime(fmt).to_numpy(dtype=object)
        return pa.array(text, pa.string(), mask=mask)
    day = minute // MINUTES_PER_DAY
    lo = int(day.min())
    width = 16 if "%H" in fmt else 10
    buf = np.empty((minute.size, width), dtype=np.uint8)
    buf[:, :10] = _date_lut(cal, lo, int(day.max()))[day - lo]
    if width == 16:
        buf[:, 10] = ord(" ")
        buf[:, 11:] = _TIME_LUT[minute - day * MINUTES_PER_DAY]
    return _fixed_strings(buf, mask)


def _date_lut(cal: _Calendar, lo: int, hi: int) -> np.ndarray:
    """``(hi - lo + 1, 10)`` ASCII table of ``dd/mm/YYYY`` for day offsets lo..hi."""
    d = cal.start + np.arange(lo, hi + 1).astype("timedelta64[D]")
    mo = d.astype("datetime64[M]")
    yr = d.astype("datetime64[Y]")
    out = np.empty((d.size, 10), dtype=np.uint8)
    _digits(out, 0, (d - mo.astype("datetime64[D]")).astype(np.int64) + 1, 2)
    out[:, 2] = ord("/")
    _digits(out, 3, (mo - yr.astype("datetime64[M]")).astype(np.int64) + 1, 2)
    out[:, 5] = ord("/")
    _digits(out, 6, yr.astype(np.int64) + 1970, 4)
    return out


def _time_lut() -> np.ndarray:
    """``(1440, 5)`` ASCII table of ``HH:MM`` for every minute of the day."""
    m = np.arange(MINUTES_PER_DAY)
    out = np.empty((m.size, 5), dtype=np.uint8)
    _digits(out, 0, m // 60, 2)
    out[:, 2] = ord(":")
    _digits(out, 3, m % 60, 2)
    return out


_TIME_LUT = _time_lut()


def _money_text(pence: int) -> str:
    """UK currency text of an amount in pence: ``£1,234.50``, ``-£12.50``."""
    sign = "-" if pence < 0 else ""
    a = abs(int(pence))
    return f"{sign}£{a // 100:,}.{a % 100:02d}"


def _money(pence: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Dictionary-encoded UK currency strings (few distinct amounts, formatted once)."""
    pence = np.asarray(pence, dtype=np.int64)
    if pence.size == 0:
        return pa.array([], pa.string())
    lo, hi = int(pence.min()), int(pence.max())
    if hi - lo <= 1_000_000:
        codes = pence - lo
        present = np.bincount(codes, minlength=hi - lo + 1) > 0
        labels = [_money_text(lo + v) if ok else "" for v, ok in enumerate(present)]
    else:
        values, codes = np.unique(pence, return_inverse=True)
        labels = [_money_text(v) for v in values]
    return _cat(codes, labels, mask)


def _cat(
    codes: np.ndarray, labels: list[str] | tuple[str, ...], mask: np.ndarray | None = None
) -> pa.Array:
    """Dictionary array of ``labels[codes]``; negative codes (or ``mask``) are empty."""
    codes = np.asarray(codes, dtype=np.int64)
    null = codes < 0 if mask is None else (mask | (codes < 0))
    idx = pa.array(np.where(null, 0, codes).astype(np.int32), mask=null, type=pa.int32())
    return pa.DictionaryArray.from_arrays(idx, pa.array(list(labels), pa.string()))


def _ints(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Integer column; masked entries are empty."""
    values = np.asarray(values, dtype=np.int64)
    return pa.array(values, mask=mask, type=pa.int64())


def _template() -> tuple[str, dict[str, Any]]:
    """Text and parsed content of the packaged demo ``org.yaml``."""
    text = (resources.files("playbook") / "templates" / TEMPLATE).read_text(encoding="utf-8")
    return text, yaml.safe_load(text)


def _raw_words(spec: dict[str, Any], column: str) -> dict[Any, str]:
    """Inverse of a template ``values`` mapping: canonical value -> raw export word."""
    return {v: k for k, v in spec.get("values", {}).get(column, {}).items()}


_STRUCTURAL = (b",", b'"', b"\r", b"\n")


def _needs_quotes(arr: pa.Array) -> bool:
    """Whether any value of a string or dictionary column needs CSV quoting."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)) or not len(arr):
        return False
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset : arr.offset + len(arr) + 1]
    data = memoryview(arr.buffers()[2])[int(offsets[0]) : int(offsets[-1])].tobytes()
    return any(ch in data for ch in _STRUCTURAL)


def _write_csv(
    path: Path, columns: dict[str, pa.Array], inserts: list[tuple[int, str]] | None = None
) -> int:
    """Write columns as CSV (UTF-8, ``\\n`` line ends, quotes only where needed).

    When no value needs quotes, Arrow's CSV writer writes the data unquoted; otherwise
    each row is assembled with Arrow string kernels, quoting only the values that hold
    a comma, quote or line break. ``inserts`` are raw lines placed before the given data
    row positions.

    Returns
    -------
    int
        Number of data rows written (including inserts).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns)
    inserts = sorted(inserts or [], key=lambda x: x[0])
    quote = [_needs_quotes(c.combine_chunks()) for c in table.columns]
    with pa.OSFile(str(path), "wb") as sink:
        sink.write(_csv_line(list(columns)).encode("utf-8"))
        at = 0
        for pos, line in [*inserts, (table.num_rows, None)]:
            if pos > at:
                part = table.slice(at, pos - at)
                if any(quote):
                    sink.write(_joined_rows(part, quote))
                else:
                    pacsv.write_csv(part, sink, write_options=_CSV_OPTIONS)
            if line is not None:
                sink.write(line.encode("utf-8"))
            at = pos
    return table.num_rows + len(inserts)


_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none", batch_size=65_536)


def _joined_rows(table: pa.Table, quote: list[bool]) -> pa.Buffer:
    """CSV text of ``table`` built with Arrow kernels, quoting the flagged columns' values."""
    texts = []
    for col, q in zip(table.columns, quote, strict=True):
        arr = col.combine_chunks()
        if pa.types.is_dictionary(arr.type):
            arr = arr.cast(arr.type.value_type)
        arr = pc.fill_null(pc.cast(arr, pa.large_string()), "")
        if q:
            needs = pc.match_substring_regex(arr, r'[,"\r\n]')
            q_ = pa.scalar('"', pa.large_string())
            inner = pc.replace_substring(arr, '"', '""')
            quoted = pc.binary_join_element_wise(q_, inner, q_, pa.scalar("", pa.large_string()))
            arr = pc.if_else(needs, quoted, arr)
        texts.append(arr)
    rows = pc.binary_join_element_wise(*texts, pa.scalar(",", pa.large_string()))
    empty = pa.scalar("", pa.large_string())
    rows = pc.binary_join_element_wise(rows, empty, pa.scalar("\n", pa.large_string()))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[
        rows.offset : rows.offset + len(rows) + 1
    ]
    return rows.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def _csv_line(values: list[str]) -> str:
    """One CSV line with minimal quoting."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def _row_text(columns: dict[str, pa.Array], row: int) -> list[str]:
    """Field texts of one row, exactly as :func:`_write_csv` writes them (no quoting)."""
    table = pa.table(columns).slice(row, 1)
    sink = io.BytesIO()
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(table, sink, write_options=opts)
    return sink.getvalue().decode("utf-8").rstrip("\n").split(",")


# ---------------------------------------------------------------------------
# Export tables
# ---------------------------------------------------------------------------
def _sales_columns(
    spec: dict[str, Any],
    cal: _Calendar,
    lines: dict[str, np.ndarray],
    cust: _Customers,
    prog: _Programme,
    perf_ids: np.ndarray,
) -> dict[str, pa.Array]:
    """Columns of ``exports/sales.csv`` keyed by the template's raw header names."""
    col = spec["columns"]
    fmt = spec.get("date_format", "%d/%m/%Y %H:%M")
    chan = _raw_words(spec, "channel")
    item = _raw_words(spec, "item_type")
    status = _raw_words(spec, "status")
    comp = _raw_words(spec, "is_comp")
    perf = lines["perf"]
    has_perf = perf >= 0
    return {
        col["line_id"]: _ints(lines["line_id"]),
        col["order_id"]: _ints(lines["order_id"]),
        col["customer_id"]: _ints(cust.ids[lines["cust"]]),
        col["purchase_time"]: _format_times(cal, lines["minute"], fmt),
        col["channel"]: _cat(lines["channel"], [chan[c] for c in CHANNELS]),
        col["item_type"]: _cat(lines["item"], [item[i] for i in ITEMS]),
        col["performance_id"]: _ints(perf_ids[np.maximum(perf, 0)], mask=~has_perf),
        col["price_band"]: _cat(lines["band"], BANDS),
        col["ticket_type"]: _cat(lines["ttype"], TICKET_TYPES),
        col["quantity"]: _ints(lines["qty"]),
        col["list_price"]: _money(lines["list_p"]),
        col["paid_amount"]: _money(lines["paid_p"]),
        col["discount"]: _money(lines["list_p"] - lines["paid_p"]),
        col["is_comp"]: _cat(lines["comp"], [comp[False], comp[True]]),
        col["status"]: _cat(lines["status"], [status[s] for s in STATUSES]),
        col["parent_line_id"]: _ints(lines["parent_id"], mask=lines["parent_id"] < 0),
    }


def _contact_details(cfg: SynthConfig, n: int) -> dict[str, pa.Array]:
    """Fake names, emails, phones and UK addresses; ~15% of customers share a household.

    Emails use reserved example domains and phones the Ofcom drama range (07700 900xxx),
    so nothing can reach a real person. Household partners share surname and address.

    Returns
    -------
    dict
        ``CUSTOMER_EXTRAS`` columns plus ``postcode`` and ``household`` (Arrow arrays).
    """
    rng = _rng(cfg.seed, "pii")
    female = rng.random(n) < 0.55
    first_labels = [*FEMALE_NAMES, *MALE_NAMES]
    first_code = np.where(
        female,
        rng.integers(len(FEMALE_NAMES), size=n),
        len(FEMALE_NAMES) + rng.integers(len(MALE_NAMES), size=n),
    )
    title_labels = [*FEMALE_TITLES, *MALE_TITLES, "Mx"]
    title_code = np.where(
        female,
        rng.choice(len(FEMALE_TITLES), size=n, p=FEMALE_TITLE_P),
        len(FEMALE_TITLES) + rng.choice(len(MALE_TITLES), size=n, p=MALE_TITLE_P),
    )
    title_code = np.where(rng.random(n) < 0.01, len(title_labels) - 1, title_code)
    last_code = rng.integers(len(LAST_NAMES), size=n)
    w = np.array([d[2] for d in DISTRICTS], float)
    district = rng.choice(len(DISTRICTS), size=n, p=w / w.sum())
    street = rng.integers(len(STREETS), size=n)
    kind = rng.integers(len(STREET_KINDS), size=n)
    number = rng.integers(1, 180, size=n)
    inward = np.empty((n, 3), np.uint8)
    inward[:, 0] = 48 + rng.integers(1, 10, size=n)
    inward[:, 1:] = INWARD_LETTERS[rng.integers(INWARD_LETTERS.size, size=(n, 2))]
    # Households: pairs of customers sharing surname, address and household id.
    pairs = rng.permutation(n)[: int(n * HOUSEHOLD_SHARE) // 2 * 2].reshape(-1, 2)
    household = np.arange(n)
    for arr in (last_code, district, street, kind, number, household, inward):
        arr[pairs[:, 1]] = arr[pairs[:, 0]]
    local = pc.binary_join_element_wise(
        pc.take(pa.array([x.lower() for x in first_labels]), pa.array(first_code)),
        pc.take(pa.array([x.lower().replace("'", "") for x in LAST_NAMES]), pa.array(last_code)),
        ".",
    )
    email_no = pc.cast(pa.array(rng.integers(1, 100, size=n)), pa.string())
    local = pc.if_else(
        pa.array(rng.random(n) < 0.4), pc.binary_join_element_wise(local, email_no, ""), local
    )
    domain = pc.take(pa.array(EMAIL_DOMAINS), pa.array(rng.integers(len(EMAIL_DOMAINS), size=n)))
    phone = np.empty((n, 12), np.uint8)
    phone[:] = np.frombuffer(b"07700 900000", np.uint8)
    _digits(phone, 9, rng.integers(0, 1000, size=n), 3)
    address = pc.binary_join_element_wise(
        pc.cast(pa.array(number), pa.string()),
        pc.take(pa.array(STREETS), pa.array(street)),
        pc.take(pa.array(STREET_KINDS), pa.array(kind)),
        " ",
    )
    outward = pc.take(pa.array([d[0] for d in DISTRICTS]), pa.array(district))
    values = (
        _cat(title_code, title_labels).cast(pa.string()),
        _cat(first_code, first_labels).cast(pa.string()),
        _cat(last_code, LAST_NAMES).cast(pa.string()),
        pc.binary_join_element_wise(local, domain, "@"),
        _fixed_strings(phone),
        address,
        pc.take(pa.array([d[1] for d in DISTRICTS]), pa.array(district)),
    )
    out = dict(zip(CUSTOMER_EXTRAS, values, strict=True))
    out["postcode"] = pc.binary_join_element_wise(outward, _fixed_strings(inward), " ")
    out["household"] = _ints(3_000_000 + rng.permutation(n)[household])
    return out


def _customer_columns(
    cfg: SynthConfig, spec: dict[str, Any], cal: _Calendar, cust: _Customers, people: _People
) -> dict[str, pa.Array]:
    """Columns of ``exports/customers.csv``: mapped columns plus fake contact details.

    Anonymised customers keep their id, household and flags; their contact details and
    birth date are blank. Birth dates (for ~30%) fall in the segment's age band, and the
    Audience Spectrum code is drawn from the segment's typical mix.
    """
    rng = _rng(cfg.seed, "customer-records")
    n = cust.seg.size
    col = spec["columns"]
    fmt = spec.get("date_format", "%d/%m/%Y")
    yes = _raw_words(spec, "birthday_consent")
    anon_word = _raw_words(spec, "anonymised")
    anon = people.anonymised
    has_dob = (rng.random(n) < DOB_SHARE) & ~anon
    age = _seg_table("age")[cust.seg]
    years = age[:, 0] + rng.random(n) * (age[:, 1] - age[:, 0])
    dob_day = cal.horizon - np.round(years * YEAR_DAYS).astype(np.int64)
    bday_ok = has_dob & (rng.random(n) < BIRTHDAY_OK_SHARE)
    spectrum = _choose(rng, _seg_table("spectrum"), cust.seg)
    contact = _contact_details(cfg, n)
    keep = pa.array(~anon)
    blank = pa.scalar(None, pa.string())
    out = {col["customer_id"]: _ints(cust.ids)}
    out.update({k: pc.if_else(keep, contact[k], blank) for k in CUSTOMER_EXTRAS})
    out[col["postcode"]] = pc.if_else(keep, contact["postcode"], blank)
    out[col["household_id"]] = contact["household"]
    out[col["birth_date"]] = _format_times(cal, dob_day * MINUTES_PER_DAY, fmt, mask=~has_dob)
    out[col["birthday_consent"]] = _cat(bday_ok, [yes[False], yes[True]])
    out[col["segment_code"]] = _cat(spectrum, SPECTRUM)
    out[col["created_at"]] = _format_times(cal, people.created_day * MINUTES_PER_DAY, fmt)
    out[col["anonymised"]] = _cat(anon, [anon_word[False], anon_word[True]])
    return out


def _consents(
    cfg: SynthConfig, cust: _Customers, people: _People, cal: _Calendar
) -> dict[str, np.ndarray]:
    """Latest consent status (0 opted in, 1 opted out, 2 not asked) and its date per channel.

    Opt-ins date from the record's creation (existing customers: some time in the
    years before the period); opt-outs from a later date. Anonymised customers are
    not asked.
    """
    rng = _rng(cfg.seed, "consents")
    n = cust.seg.size
    k = len(CONSENT_CHANNELS)
    status = np.full((n, k), 2, np.int64)
    day = np.zeros((n, k), np.int64)
    created = people.created_day
    for j, (p_in, p_out) in enumerate(CONSENT_SHARES):
        u = rng.random(n)
        status[:, j] = np.where(u < p_in, 0, np.where(u < p_in + p_out, 1, 2))
        opt_in = np.maximum(created, -rng.integers(1, 900, size=n))
        lo = np.maximum(created, 0)
        opt_out = lo + (rng.random(n) * (cal.horizon - 1 - lo)).astype(np.int64)
        day[:, j] = np.where(status[:, j] == 1, opt_out, opt_in)
    status[people.anonymised] = 2
    return {"status": status, "day": day}


# ---------------------------------------------------------------------------
# Messy rows
# ---------------------------------------------------------------------------
def _messy_rows(
    cfg: SynthConfig,
    columns: dict[str, pa.Array],
    spec: dict[str, Any],
    lines: dict[str, np.ndarray],
    perf_ids: np.ndarray,
) -> tuple[list[tuple[int, str]], dict[str, int]]:
    """Raw CSV lines of ``cfg.messy`` rows of each kind, at random positions.

    Every messy row is a clean sold ticket line with one fault, a fresh Line ID (except
    the exact duplicate) and nothing else wrong, so intake drops it for one reason.
    """
    rng = _rng(cfg.seed, "messy")
    n = cfg.messy
    if n <= 0:
        return [], {}
    col = spec["columns"]
    names = list(columns)
    pos = {c: names.index(col[c]) for c in col}
    status = _raw_words(spec, "status")
    clean = np.flatnonzero(
        (lines["item"] == IT_TICKET) & (lines["status"] == ST_SOLD) & (lines["paid_p"] > 0)
    )
    picks = rng.choice(clean, size=len(MESSY_KINDS) * n, replace=clean.size < len(MESSY_KINDS) * n)
    next_id = int(lines["line_id"].max()) + 1
    bad_perf = int(perf_ids.max()) + 1000
    bad_parent = next_id + 500_000
    inserts: list[tuple[int, str]] = []
    counts: dict[str, int] = {}
    n_rows = len(lines["line_id"])
    for k, kind in enumerate(MESSY_KINDS):
        for j in range(n):
            row = int(picks[k * n + j])
            if kind == "blank_row":
                inserts.append((int(rng.integers(0, n_rows + 1)), "," * (len(names) - 1) + "\n"))
                continue
            f = _row_text(columns, row)
            if kind != "duplicate_line":
                f[pos["line_id"]] = str(next_id)
                next_id += 1
            if kind == "missing_customer":
                f[pos["customer_id"]] = ""
            elif kind == "unparseable_date":
                f[pos["purchase_time"]] = ("31/02/2025 19:30", "not a date")[j % 2]
            elif kind == "unparseable_amount":
                f[pos["paid_amount"]] = "twelve pounds"
            elif kind == "unknown_performance":
                f[pos["performance_id"]] = str(bad_perf + j)
            elif kind == "negative_not_return":
                f[pos["paid_amount"]] = "-" + f[pos["paid_amount"]]
                f[pos["discount"]] = _money_text(
                    int(lines["list_p"][row]) + int(lines["paid_p"][row])
                )
            elif kind == "orphan_return":
                f[pos["status"]] = status["returned"]
                f[pos["list_price"]] = "-" + f[pos["list_price"]]
                f[pos["paid_amount"]] = "-" + f[pos["paid_amount"]]
                disc = int(lines["list_p"][row]) - int(lines["paid_p"][row])
                f[pos["discount"]] = _money_text(-disc)
                f[pos["parent_line_id"]] = str(bad_parent + j)
            elif kind == "unknown_value":
                f[pos["status"]] = "Pending"
            at = row + 1 if kind == "duplicate_line" else 0
            inserts.append((int(rng.integers(at, n_rows + 1)), _csv_line(f)))
        counts[kind] = n
    return inserts, counts


# ---------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------
def _observed(
    cfg: SynthConfig,
    cal: _Calendar,
    cust: _Customers,
    lines: dict[str, np.ndarray],
    prog: _Programme,
    orders: _Orders,
    subs: _Subscriptions,
    members: dict[str, np.ndarray],
    gifts: dict[str, np.ndarray],
) -> dict[str, float]:
    """Calibration values measured on the generated arrays.

    Visits are the performances of sold ticket lines. First-timers are customers first
    seen after the first season (earlier ones may predate the data) and at least a year
    before the data end; they came back if they saw another performance (12 hours or
    more later) within 365 days. One-year retention pools every pair of consecutive
    seasons. Revenue adds paid amounts (returns net out, voids left out), membership
    fees and gifts.
    """
    n = cust.seg.size
    tix = (lines["item"] == IT_TICKET) & (lines["status"] == ST_SOLD)
    n_sold = max(int(tix.sum()), 1)
    c = lines["cust"][tix]
    day = prog.perf_start[lines["perf"][tix]] / MINUTES_PER_DAY
    first_day = np.full(n, np.inf)
    np.minimum.at(first_day, c, day)
    later = day > first_day[c] + 0.5
    within = later & (day <= first_day[c] + 365)
    returned = np.zeros(n, bool)
    returned[c[within]] = True
    cohort = (first_day >= cal.season_days[1]) & (first_day <= cal.horizon - 365)
    season = cal.season_of(day)
    active = np.zeros((n, cfg.n_seasons), bool)
    active[c, season] = True
    kept = active[:, 1:] & active[:, :-1]
    first_season = cal.season_of(np.minimum(first_day, cal.horizon - 1))
    new_share = [
        float((active[:, s] & (first_season == s)).sum() / max(active[:, s].sum(), 1))
        for s in range(1, cfg.n_seasons)
    ]
    sub_obs = subs.season < cfg.n_seasons - 1
    mem_obs = members["renewed"] >= 0
    mfirst = members["first"].astype(bool)
    revenue = np.zeros(n)
    net = lines["status"] != ST_VOID
    np.add.at(revenue, lines["cust"][net], lines["paid_p"][net] / 100)
    np.add.at(revenue, members["cust"], MEMBER_PENCE[members["level"]] / 100)
    np.add.at(revenue, gifts["cust"], gifts["pence"] / 100)
    top = np.sort(revenue)[::-1][: max(1, int(round(0.03 * n)))]
    n_ticket_lines = int((lines["item"] == IT_TICKET).sum())
    online = float((orders.channel == WEB).mean())
    occ_mean, occ_max = _occupancy(lines, prog)
    return {
        "first_timer_return_12m": _share(returned[cohort]),
        "first_timer_cohort_size": int(cohort.sum()),
        "retention_1y": float(kept.sum() / max(active[:, :-1].sum(), 1)),
        "subscriber_renewal": _share(subs.renewed[sub_obs]),
        "subscriber_renewal_first_year": _share(subs.renewed[sub_obs & subs.first_year]),
        "subscriber_renewal_later": _share(subs.renewed[sub_obs & ~subs.first_year]),
        "member_renewal_first_year": _share(members["renewed"][mem_obs & mfirst] == 1),
        "member_renewal_later": _share(members["renewed"][mem_obs & ~mfirst] == 1),
        "top_3pct_revenue_share": float(top.sum() / max(revenue.sum(), 1e-9)),
        "first_timer_share": float(np.mean(new_share)) if new_share else float("nan"),
        "online_share": online,
        "ticket_lines_per_customer": n_ticket_lines / n,
        "returned_share": float((lines["status"] == ST_RET).sum() / n_sold),
        "exchanged_share": float((lines["status"] == ST_EXCH).sum() / n_sold),
        "comp_share": float((tix & (lines["comp"] == 1)).sum() / n_sold),
        "occupancy_mean": occ_mean,
        "occupancy_max": occ_max,
    }


def _share(x: np.ndarray) -> float:
    """Mean of a boolean array (NaN when empty)."""
    return float(np.mean(x)) if np.size(x) else float("nan")


def _occupancy(lines: dict[str, np.ndarray], prog: _Programme) -> tuple[float, float]:
    """Mean and largest share of seats sold (tickets that stood) per performance."""
    stood = _standing(lines)
    sold = np.bincount(lines["perf"][stood], minlength=prog.perf_start.size)
    occ = sold / prog.perf_capacity
    live = ~prog.perf_cancelled
    return float(occ[live].mean()), float(occ[live].max())


def _round_floats(d: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """Round float values for a stable, readable JSON file (NaN becomes ``None``)."""
    return {
        k: (None if np.isnan(v) else round(v, digits)) if isinstance(v, float) else v
        for k, v in d.items()
    }


# ---------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------
@dataclass
class _World:
    """Everything simulated for one organisation, before formatting."""

    cfg: SynthConfig
    cal: _Calendar
    cust: _Customers
    prog: _Programme
    orders: _Orders
    subs: _Subscriptions
    lines: dict[str, np.ndarray]
    people: _People
    members: dict[str, np.ndarray]
    gifts: dict[str, np.ndarray]
    consent: dict[str, np.ndarray]
    inter: dict[str, np.ndarray]
    campaigns: list[str]
    unsub: np.ndarray
    survey: dict[str, np.ndarray]
    scans: dict[str, np.ndarray]

    @property
    def perf_ids(self) -> np.ndarray:
        """Export Instance ID of each performance."""
        return INSTANCE_ID_START + np.arange(self.prog.perf_start.size)

    @property
    def prod_ids(self) -> np.ndarray:
        """Export Event ID of each production."""
        return EVENT_ID_START + np.arange(len(self.prog.prod_title))


def _simulate(cfg: SynthConfig) -> _World:
    """Run the whole simulation: customers, programme, sales, CRM records, email, survey."""
    cal = _calendar(cfg)
    cust = _make_customers(cfg)
    v_idx, v_day = _simulate_visits(cfg, cust, cal)
    visits = _visit_attributes(cfg, cust, cal, v_idx, v_day)
    subs = _simulate_subscriptions(cfg, cust, cal, visits)
    prog = _build_programme(cfg, cal, _demand(cfg, visits, subs))
    pkg_minute, pkg_idx, pkg_perf = _package_performances(cfg, cal, prog, subs)
    perf = _assign_performances(cfg, prog, visits, pkg_perf, subs.party[pkg_idx])
    orders = _make_orders(cfg, cust, visits, perf, prog, subs, pkg_minute)
    sold = _sale_lines(cfg, cust, prog, orders, pkg_idx, pkg_perf)
    lines = _finalise_lines(_concat_lines([sold, _reversals(cfg, prog, orders, sold)]))
    people = _people(cfg, cust, orders, cal)
    last_minute = np.zeros(cust.seg.size, np.int64)
    np.maximum.at(last_minute, orders.cust, orders.minute)
    consent = _consents(cfg, cust, people, cal)
    email_ok = (consent["status"][:, 0] == 0) & ~people.anonymised
    vis = _visit_rows(lines)
    inter, campaigns, unsub = _interactions(cfg, cust, cal, prog, vis, email_ok, people)
    return _World(
        cfg=cfg,
        cal=cal,
        cust=cust,
        prog=prog,
        orders=orders,
        subs=subs,
        lines=lines,
        people=people,
        members=_memberships(cfg, cust, cal, people),
        gifts=_donations(cfg, cust, cal, people, last_minute),
        consent=consent,
        inter=inter,
        campaigns=campaigns,
        unsub=unsub,
        survey=_survey(cfg, cust, cal, prog, vis),
        scans=_scans(cfg, lines, prog),
    )


def _production_columns(spec: dict[str, Any], w: _World) -> dict[str, pa.Array]:
    """Columns of the productions export (``exports/events.csv``)."""
    col = spec["columns"]
    labels = [g for gs in GENRES for g in gs]
    offset = np.cumsum([0] + [len(g) for g in GENRES])[:-1]
    return {
        col["production_id"]: _ints(w.prod_ids),
        col["title"]: pa.array(w.prog.prod_title, pa.string()),
        col["artform"]: _cat(w.prog.prod_artform, ARTFORMS),
        col["genre"]: _cat(offset[w.prog.prod_artform] + w.prog.prod_genre, labels),
    }


def _performance_columns(spec: dict[str, Any], w: _World) -> dict[str, pa.Array]:
    """Columns of the performances export (``exports/instances.csv``)."""
    col, prog = spec["columns"], w.prog
    cancelled = _raw_words(spec, "cancelled")
    return {
        col["performance_id"]: _ints(w.perf_ids),
        col["production_id"]: _ints(w.prod_ids[prog.perf_prod]),
        col["venue"]: _cat(prog.prod_venue[prog.perf_prod], VENUES),
        col["start_time"]: _format_times(w.cal, prog.perf_start, spec["date_format"]),
        col["capacity"]: _ints(prog.perf_capacity),
        col["cancelled"]: _cat(prog.perf_cancelled, [cancelled[False], cancelled[True]]),
    }


def _scan_columns(spec: dict[str, Any], w: _World) -> dict[str, pa.Array]:
    """Columns of the door-scan export (``exports/scans.csv``)."""
    col, scans = spec["columns"], w.scans
    return {
        col["line_id"]: _ints(scans["line_id"]),
        col["customer_id"]: _ints(w.cust.ids[scans["cust"]]),
        col["performance_id"]: _ints(w.perf_ids[scans["perf"]]),
        col["scanned_at"]: _format_times(w.cal, scans["minute"], spec["date_format"]),
    }


def _membership_columns(spec: dict[str, Any], w: _World) -> dict[str, pa.Array]:
    """Columns of the memberships export (one row per annual term)."""
    col, m, fmt = spec["columns"], w.members, spec["date_format"]
    kind = _raw_words(spec, "membership_type")
    return {
        col["membership_id"]: _ints(MEMBERSHIP_ID_START + np.arange(m["cust"].size)),
        col["customer_id"]: _ints(w.cust.ids[m["cust"]]),
        col["scheme"]: _cat(np.zeros(m["cust"].size), [MEMBER_SCHEME]),
        col["tier"]: _cat(m["level"], MEMBER_LEVELS),
        col["start_date"]: _format_times(w.cal, m["start"] * MINUTES_PER_DAY, fmt),
        col["end_date"]: _format_times(w.cal, m["end"] * MINUTES_PER_DAY, fmt),
        col["membership_type"]: _cat(m["renewal"], [kind["new"], kind["renewal"]]),
        col["amount"]: _money(MEMBER_PENCE[m["level"]]),
    }


def _donation_columns(spec: dict[str, Any], w: _World) -> dict[str, pa.Array]:
    """Columns of the donations export (one row per gift)."""
    col, g = spec["columns"], w.gifts
    campaign, labels = _campaign_of_day(w.cal, g["day"])
    return {
        col["donation_id"]: _ints(GIFT_ID_START + np.arange(g["cust"].size)),
        col["customer_id"]: _ints(w.cust.ids[g["cust"]]),
        col["donation_date"]: _format_times(w.cal, g["day"] * MINUTES_PER_DAY, spec["date_format"]),
        col["amount"]: _money(g["pence"]),
        col["fund"]: _cat(g["fund"], FUNDS),
        col["campaign"]: _cat(campaign, labels),
    }


def _interaction_columns(spec: dict[str, Any], w: _World) -> dict[str, pa.Array]:
    """Columns of the email-activity export (sends, opens, clicks, unsubscribes, web visits)."""
    col, rows = spec["columns"], w.inter
    words = _raw_words(spec, "kind")
    kinds = [
        words[k] for k in ("email_send", "email_open", "email_click", "unsubscribe", "web_visit")
    ]
    return {
        col["customer_id"]: _ints(w.cust.ids[rows["cust"]]),
        col["occurred_at"]: _format_times(w.cal, rows["minute"], spec["date_format"]),
        col["kind"]: _cat(rows["kind"], kinds),
        col["campaign"]: _cat(rows["campaign"], w.campaigns),
        col["production_id"]: _ints(w.prod_ids[np.maximum(rows["prod"], 0)], mask=rows["prod"] < 0),
    }


def _survey_columns(spec: dict[str, Any], w: _World) -> dict[str, pa.Array]:
    """Columns of the post-show survey export."""
    col, sv = spec["columns"], w.survey
    return {
        col["response_id"]: _ints(RESPONSE_ID_START + np.arange(sv["cust"].size)),
        col["customer_id"]: _ints(w.cust.ids[sv["cust"]]),
        col["responded_at"]: _format_times(w.cal, sv["minute"], spec["date_format"]),
        col["performance_id"]: _ints(w.perf_ids[sv["perf"]]),
        col["nps"]: _ints(sv["nps"]),
        col["intent_to_return"]: _ints(sv["intent"]),
    }


_BUILDERS = {
    "productions": _production_columns,
    "performances": _performance_columns,
    "attendance": _scan_columns,
    "customers": lambda spec, w: _customer_columns(w.cfg, spec, w.cal, w.cust, w.people),
    "consents": lambda spec, w: _consent_columns(spec, w.cal, w.cust, w.consent, w.unsub),
    "memberships": _membership_columns,
    "donations": _donation_columns,
    "interactions": _interaction_columns,
    "survey_responses": _survey_columns,
}


def _write_exports(
    org: Path, sources: dict[str, Any], w: _World
) -> tuple[dict[str, int], dict[str, int]]:
    """Write every export the template lists; returns rows per file and messy-row counts."""
    files: dict[str, int] = {}
    spec = sources["order_lines"]
    columns = _sales_columns(spec, w.cal, w.lines, w.cust, w.prog, w.perf_ids)
    inserts, messy = _messy_rows(w.cfg, columns, spec, w.lines, w.perf_ids)
    files[spec["file"]] = _write_csv(org / spec["file"], columns, inserts)
    del columns
    for table, spec in sources.items():
        if table in _BUILDERS:
            files[spec["file"]] = _write_csv(org / spec["file"], _BUILDERS[table](spec, w))
    return files, messy


def _write_truth(
    org: Path, w: _World, files: dict[str, int], messy: dict[str, int]
) -> dict[str, Any]:
    """Write ``truth/`` (segments, generator.json, messy.json); returns the observed values."""
    files["truth/segments.csv"] = _write_csv(
        org / "truth" / "segments.csv",
        {"Customer ID": _ints(w.cust.ids), "segment": _cat(w.cust.seg, SEGMENT_NAMES)},
    )
    observed = _round_floats(
        _observed(w.cfg, w.cal, w.cust, w.lines, w.prog, w.orders, w.subs, w.members, w.gifts)
    )
    end = (w.cal.start + np.timedelta64(w.cal.horizon, "D")).astype("datetime64[m]")
    counts = np.bincount(w.cust.seg, minlength=len(SEGMENTS))
    truth: dict[str, Any] = {k: list(v) for k, v in EXPECTED.items()}
    truth.update(
        observed=observed,
        rows=dict(files),
        config=asdict(w.cfg),
        data_start=str(w.cal.start),
        data_end=str(end - np.timedelta64(1, "m")).replace("T", " "),
        parameters=_parameters(),
        segment_counts={n: int(c) for n, c in zip(SEGMENT_NAMES, counts, strict=True)},
    )
    _write_json(org / "truth" / "generator.json", truth)
    messy_path = org / "truth" / "messy.json"
    if messy:
        _write_json(messy_path, messy)
    elif messy_path.exists():
        messy_path.unlink()
    return observed


def folder_slug(org_dir: str | Path) -> str:
    """The slug for an organisation generated into ``org_dir``: its folder name, slugified.

    Lowercase letters, digits and hyphens (``data/City Theatre`` gives
    ``city-theatre``); ``data/demo`` gives ``demo``, as the template says.
    """
    name = Path(org_dir).resolve().name
    kept = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower())
    return "-".join(part for part in kept.split("-") if part) or "demo"


def generate(org_dir: str | Path, config: SynthConfig = DEFAULT_CONFIG) -> dict[str, object]:
    """Generate the demo organisation's raw exports and ground truth into ``org_dir``.

    Parameters
    ----------
    org_dir : str or pathlib.Path
        Organisation folder to create or overwrite.
    config : SynthConfig
        Size, seed and seasons of the organisation.

    Returns
    -------
    dict
        ``org_dir``, ``customers``, ``files`` (relative path -> data rows written),
        ``observed`` (calibration values) and ``elapsed_seconds``.

    Notes
    -----
    Files written: ``org.yaml`` (the packaged template, with the folder's name as its
    ``slug``: see :func:`folder_slug`); every export the template
    lists; ``private/salt``; ``truth/segments.csv`` (``Customer ID``, ``segment``);
    ``truth/generator.json`` (the expected range of each calibration value under its
    own name, e.g. ``"first_timer_return_12m": [0.2, 0.3]``, the ``observed`` values,
    ``rows`` per file, ``config``, ``parameters`` and ``segment_counts``);
    ``truth/messy.json`` (messy rows per ledger reason) when ``config.messy > 0``.
    """
    t_start = time.perf_counter()
    if config.customers < 1 or config.n_seasons < 2:
        raise ValueError("SynthConfig needs at least 1 customer and 2 seasons")
    org = Path(org_dir)
    org.mkdir(parents=True, exist_ok=True)
    text, template = _template()
    world = _simulate(config)
    files, messy = _write_exports(org, template["sources"], world)
    text = text.replace("\nslug: demo\n", f"\nslug: {folder_slug(org)}\n", 1)
    (org / "org.yaml").write_text(text, encoding="utf-8")
    salt = hashlib.sha256(f"demo-salt-{config.seed}".encode()).hexdigest()
    (org / "private").mkdir(exist_ok=True)
    (org / "private" / "salt").write_text(salt + "\n", encoding="utf-8")
    observed = _write_truth(org, world, files, messy)
    return {
        "org_dir": str(org),
        "customers": config.customers,
        "files": files,
        "observed": observed,
        "elapsed_seconds": round(time.perf_counter() - t_start, 2),
    }


def _consent_columns(
    spec: dict[str, Any],
    cal: _Calendar,
    cust: _Customers,
    consent: dict[str, np.ndarray],
    unsub: np.ndarray,
) -> dict[str, pa.Array]:
    """Columns of ``exports/consents.csv``: one row per customer and channel."""
    col = spec["columns"]
    fmt = spec.get("date_format", "%d/%m/%Y")
    chan = _raw_words(spec, "channel")
    stat = _raw_words(spec, "status")
    status = consent["status"].copy()
    day = consent["day"].copy()
    un = unsub < np.iinfo(np.int64).max
    status[un, 0] = 1
    day[un, 0] = unsub[un] // MINUTES_PER_DAY
    n, k = status.shape
    c = np.repeat(np.arange(n), k)
    j = np.tile(np.arange(k), n)
    s = status[c, j]
    return {
        col["customer_id"]: _ints(cust.ids[c]),
        col["channel"]: _cat(j, [chan[x] for x in CONSENT_CHANNELS]),
        col["status"]: _cat(s, [stat["granted"], stat["withdrawn"], stat["unknown"]]),
        col["consent_date"]: _format_times(cal, day[c, j] * MINUTES_PER_DAY, fmt, mask=s == 2),
    }


_KNOBS = (
    "OCCUPANCY_TARGET", "MAX_FILL", "RETURN_ORDER_RATE", "EXCHANGE_ORDER_RATE",
    "COMP_ORDER_RATE", "VOID_ORDER_RATE", "CANCEL_RATE", "SCAN_RATE", "SURVEY_RATE",
    "FEE_PENCE", "PRESHOW_OPEN_RATE", "NEWSLETTER_OPEN_RATE", "NEWSLETTER_CLICK_RATE",
    "CLICK_BEFORE_BOOKING", "WEB_VISIT_BEFORE_ONLINE", "WINDOW_SHOPPER_RATE",
    "UNSUBSCRIBE_RATE", "HOUSEHOLD_SHARE", "DOB_SHARE", "BIRTHDAY_OK_SHARE",
    "ANONYMISED_SHARE", "MEMBER_RENEW_FIRST", "MEMBER_RENEW_LATER", "MEMBER_UPGRADE",
    "MEMBER_LATE_RENEWAL", "SUB_RENEW_FIRST", "SUB_RENEW_LATER", "PACKAGE_MIN",
    "PACKAGE_MAX", "STREAM_SHARE", "CONCESSION_FACTOR", "UNDER18_FACTOR", "UNDER26_PENCE",
    "SUBSCRIPTION_FACTOR", "PROGRAMME_PENCE", "MERCH_QTY2", "VOUCHER_RATE",
)  # fmt: skip


def _parameters() -> dict[str, Any]:
    """Every calibration knob, for the record in ``truth/generator.json``."""
    knobs = {k: globals()[k] for k in _KNOBS}
    knobs["CONSENT_SHARES"] = dict(zip(CONSENT_CHANNELS, CONSENT_SHARES, strict=True))
    knobs["MONTH_WEIGHTS"] = MONTH_WEIGHTS.round(3).tolist()
    knobs["RUN_MEAN"] = dict(zip(ARTFORMS, RUN_MEAN.tolist(), strict=True))
    knobs["PROD_MIN"] = dict(zip(ARTFORMS, PROD_MIN.tolist(), strict=True))
    return {
        "knobs": knobs,
        "segments": {s.name: {k: v for k, v in asdict(s).items() if k != "name"} for s in SEGMENTS},
    }


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON deterministically (sorted keys, fixed indentation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _json_default(value: Any) -> Any:
    """JSON encoding of numpy scalars and tuples."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(type(value))

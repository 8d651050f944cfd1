"""Names for generated organizations, plain and deliberately awkward.

The awkward ones exercise every escaping path of the exporter: Prometheus
label values (quotes, backslashes, newlines), JSON and HTML (angle brackets,
ampersands), and Unicode beyond the Basic Multilingual Plane.
"""

from __future__ import annotations

import random

AWKWARD_PROJECT_NAMES: tuple[str, ...] = (
    'Team "Alpha"',
    "🚀 Launch 🌕",
    "C:\\Projects\\billing\\",
    "Проект Север",
    "multi\nline\nproject",
    "数据平台",
    "<script>alert(1)</script> & co",
    "tab\tseparated",
)

AWKWARD_KEY_NAMES: tuple[str, ...] = (
    'key "prod"',
    "back\\slash\\key",
    "line one\nline two",
    "🔑 deploy key 🔥",
    "ключ продакшн",
    "本番キー",
    "trailing backslash \\",
    "{braces}=value,comma",
)

AWKWARD_PERSON_NAMES: tuple[str, ...] = (
    "Zoë O'Brien-Müller",
    'Renée "the Admin" Dupont',
    "Łukasz Żółć",
    "李小龍",
    "Ахмед Back\\Slash",
    "New\nLine Person",
    "😀 Smiley",
)

AWKWARD_SERVICE_ACCOUNT_NAMES: tuple[str, ...] = (
    'svc "ci" bot',
    "svc\\backslash",
    "svc 🤖 robot",
    "сервис-аккаунт",
)

_ADJECTIVES = ("amber", "brisk", "cobalt", "dusty", "eager", "fuzzy", "gentle", "hollow")
_NOUNS = ("falcon", "harbor", "lantern", "meadow", "nebula", "orchid", "quartz", "summit")
_FIRST = ("Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Ken", "Margaret")
_LAST = ("Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Thompson", "Hamilton")
_KEY_PURPOSES = ("prod", "staging", "ci", "batch", "notebook", "backend", "eval", "local")

# One in this many generated names is awkward when awkward names are on.
AWKWARD_EVERY = 5


def _pick(rng: random.Random, pool: tuple[str, ...]) -> str:
    return pool[rng.randrange(len(pool))]


def project_name(rng: random.Random, index: int, awkward: bool) -> str:
    if awkward and index % AWKWARD_EVERY == 0:
        return AWKWARD_PROJECT_NAMES[(index // AWKWARD_EVERY) % len(AWKWARD_PROJECT_NAMES)]
    return f"{_pick(rng, _ADJECTIVES)}-{_pick(rng, _NOUNS)}-{index}"


def key_name(rng: random.Random, index: int, awkward: bool) -> str:
    if awkward and index % AWKWARD_EVERY == 0:
        return AWKWARD_KEY_NAMES[(index // AWKWARD_EVERY) % len(AWKWARD_KEY_NAMES)]
    return f"{_pick(rng, _KEY_PURPOSES)}-key-{index}"


def person_name(rng: random.Random, index: int, awkward: bool) -> str:
    if awkward and index % AWKWARD_EVERY == 0:
        return AWKWARD_PERSON_NAMES[(index // AWKWARD_EVERY) % len(AWKWARD_PERSON_NAMES)]
    return f"{_pick(rng, _FIRST)} {_pick(rng, _LAST)}"


def service_account_name(rng: random.Random, index: int, awkward: bool) -> str:
    if awkward and index % AWKWARD_EVERY == 0:
        pool = AWKWARD_SERVICE_ACCOUNT_NAMES
        return pool[(index // AWKWARD_EVERY) % len(pool)]
    return f"{_pick(rng, _KEY_PURPOSES)}-bot-{index}"

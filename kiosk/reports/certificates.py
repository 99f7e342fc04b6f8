"""Certificate eligibility and allowances, over a `Dataset`.

A program's rule (JSON in `programs.certificate_rule`, set by a coordinator) is one of:
  {"kind": "all_sessions"}                   every session of the person's cohort
  {"kind": "percent", "min_percent": 80}     at least N % of those sessions
  {"kind": "all_days"}                       at least one session on every day of the cohort
plus what the certificate prints: "signer_name", "signer_position", "thai_digits" (bool), and
"verify_url", the public address of the central server set by the coordinator: the certificate's
QR is then the link VERIFY_URL/verify/CODE anyone can open (a kiosk checks the same code offline).
The older form {"min_percent": 80} reads as the percent rule. Only participants (not speakers,
staff or observers) receive certificates; withdrawn people are left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from decimal import Decimal

from kiosk.errors import KioskError
from kiosk.reports.rows import Dataset, area_name, display_name, percent
from kiosk.thai import baht_text

RULE_KINDS = ("all_sessions", "percent", "all_days")


@dataclass(frozen=True)
class CertificateRule:
    """Who earns a certificate, and who signs it."""

    kind: str = "percent"
    min_percent: int = 80
    signer_name: str = ""
    signer_position: str = ""
    thai_digits: bool = False
    verify_url: str = ""

    def qr_text(self, code: str) -> str:
        """What a certificate's QR holds: the public link to its check, else the bare code."""
        return f"{self.verify_url}/verify/{code}" if self.verify_url else code

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def parse_rule(text: str | None) -> CertificateRule:
    """The rule stored on a program; the default (80 %) when none is set."""
    data = json.loads(text) if text else {}
    kind = data.get("kind") or "percent"
    return make_rule(kind, data.get("min_percent", 80), data.get("signer_name", ""),
                     data.get("signer_position", ""), bool(data.get("thai_digits")), data.get("verify_url") or "")


def make_rule(kind: str, min_percent=80, signer_name: str = "", signer_position: str = "",
              thai_digits: bool = False, verify_url: str = "") -> CertificateRule:
    """A checked rule; raises KioskError("bad_certificate_rule", "bad_verify_url")."""
    try:
        minimum = int(min_percent if min_percent not in (None, "") else 80)
    except (TypeError, ValueError):
        raise KioskError("bad_certificate_rule", field="min_percent") from None
    if kind not in RULE_KINDS or not 1 <= minimum <= 100:
        raise KioskError("bad_certificate_rule", field="kind" if kind not in RULE_KINDS else "min_percent")
    from kiosk.thai import clean_text, reject_formula

    name, position = clean_text(signer_name)[:100], clean_text(signer_position)[:200]
    reject_formula(name), reject_formula(position)
    return CertificateRule(kind, minimum, name, position, bool(thai_digits), public_address(verify_url))


_ADDRESS = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%-]+)*")


def public_address(text: str | None) -> str:
    """The central server's public address as typed ('' for none), without a trailing slash;
    raises KioskError("bad_verify_url")."""
    text = (text or "").strip().rstrip("/")
    if text and (len(text) > 200 or not _ADDRESS.fullmatch(text)):
        raise KioskError("bad_verify_url", field="verify_url")
    return text


def eligibility(data: Dataset, rule: CertificateRule) -> list[dict]:
    """Each participant with sessions attended, percent, whether eligible, and what is missing."""
    out = []
    for p in data.active:
        if p.get("role") != "participant":
            continue
        own = data.sessions_for(p)
        came = {s["id"] for s in data.attended(p)}
        missing = [s for s in own if s["id"] not in came]
        missing_days = sorted({s["day"] for s in own} - {s["day"] for s in own if s["id"] in came})
        share = percent(len(came), len(own)) or 0.0
        if rule.kind == "all_sessions":
            ok = bool(own) and not missing
        elif rule.kind == "all_days":
            ok = bool(own) and not missing_days
        else:
            ok = bool(own) and share + 1e-9 >= rule.min_percent
        out.append({"participant": p, "id": p["id"], "name": display_name(p), "attended": len(came),
                    "sessions": len(own), "percent": share, "eligible": ok, "missing": missing,
                    "missing_days": missing_days, "area": area_name(p.get("district_code") or p.get("province_code")),
                    "cohort": data.cohort(p.get("cohort_id"))})
    return out


def eligible(data: Dataset, rule: CertificateRule) -> list[dict]:
    """Only those who earn a certificate, in sheet order."""
    return [row for row in eligibility(data, rule) if row["eligible"]]


def allowance_rows(data: Dataset, rate, roles: tuple[str, ...] = ("participant",)) -> dict:
    """Per person: days attended (a day counts once, whatever its sessions), rate × days, the
    amount in Thai words; and the totals. `rate` is baht per day."""
    rate = Decimal(str(rate))
    if rate < 0:
        raise KioskError("bad_rate", field="rate")
    rows = []
    for p in data.active:
        if p.get("role") not in roles:
            continue
        days = len({s["day"] for s in data.attended(p)})
        if not days:
            continue  # nothing to pay, nothing to sign for
        amount = rate * days
        rows.append({"participant": p, "name": display_name(p), "days": days, "rate": rate, "amount": amount,
                     "words": baht_text(amount), "position": p.get("position") or "",
                     "organization": p.get("organization") or ""})
    total = sum((r["amount"] for r in rows), Decimal(0))
    return {"rows": rows, "days": sum(r["days"] for r in rows), "total": total, "total_words": baht_text(total),
            "rate": rate}

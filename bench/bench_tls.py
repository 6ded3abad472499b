"""TLS on a real local droplet with pebble as its ACME server (`droplet.up --acme pebble`):
the first provision-all including issuance, split into apt, the ACME step and the rest (2
fresh droplets); the no-op run with a valid certificate (5: it must stay within the no-op
targets, one command and no upload, and ask pebble for nothing); the run that adds a slot's
name to the certificate (expand). Whole `invoke` processes. Run as root."""

from __future__ import annotations

import os
import statistics

from bench.bench_droplet import fresh_droplet, provision_json
from bench.results import update_section
from devtools.droplet import acme
from devtools.envfile import slot_block

TITLE = "TLS on the real droplet (pebble, ACME HTTP-01 through nginx)"
FIRSTS, RUNS = 2, 5


def _issued(box) -> int:
    return (acme.acme_dir(box.path) / "pebble.log").read_text().count("Issued certificate")


def _step(report: dict, name: str) -> dict:
    return next(s for s in report["hosts"][0]["steps"] if s["step"] == name)


def _with_slot(box, n: int) -> dict[str, str]:
    path = box.path / f"inventory-{n}.toml"
    path.write_text(box.inventory_path.read_text() + "\n" + slot_block(n, box.name))
    return {"STAGING_INVENTORY": str(path)}


def main() -> None:
    totals: list[float] = []
    apts: list[float] = []
    issues: list[float] = []
    noops: list[float] = []
    expands: list[float] = []
    shapes: set[tuple[int, int]] = set()
    asked: list[int] = []
    for n in range(FIRSTS):
        with fresh_droplet(acme="pebble") as (box, _):
            elapsed, report = provision_json(box)
            assert _step(report, "acme certificate")["outcome"] == "changed", report
            totals.append(elapsed)
            apts.append(_step(report, "install packages")["seconds"])
            issues.append(_step(report, "acme certificate")["seconds"])
            if n < FIRSTS - 1:
                continue
            before = _issued(box)
            for _ in range(RUNS):
                elapsed, report = provision_json(box)
                assert report["changed"] == 0, report
                noops.append(elapsed)
                host = report["hosts"][0]
                shapes.add((host["commands"], host["uploads"]))
            asked.append(_issued(box) - before)
            elapsed, report = provision_json(box, _with_slot(box, 11))
            assert _step(report, "acme certificate")["outcome"] == "changed", report
            expands.append(elapsed)
    rests = [t - a - i for t, a, i in zip(totals, apts, issues, strict=True)]
    figures = [
        ("first provision-all with issuance, total", totals, "fresh droplet, whole process"),
        ("- of which apt", apts, "apt-get update + install (certbot included), cold lists"),
        ("- of which the ACME step", issues, "certbot: account, order, HTTP-01 for 10 names"),
        ("- the rest", rests, "facts, files, units, databases, nginx with the new certificate"),
        (
            "no-op provision-all, valid certificate",
            noops,
            f"(commands, uploads) {sorted(shapes)}; certificates issued meanwhile: {asked}",
        ),
        ("add slot 11 (expand the certificate)", expands, "its name appears on the certificate"),
    ]
    rows = [
        f"| {measure} | {statistics.median(values):.2f} s | {len(values)} | "
        f"{', '.join(f'{v:.2f}' for v in values)} | {includes} |"
        for measure, values, includes in figures
    ]
    body = (
        "`devtools.droplet.up(acme='pebble')`: Debian's pebble in the droplet's network"
        " namespace validates HTTP-01 on port 80 through our nginx; certbot in the droplet"
        " trusts pebble's CA through REQUESTS_CA_BUNDLE only. Load average at the end:"
        f" {os.getloadavg()[0]:.1f} (other work on the machine inflates every figure).\n\n"
        "| measure | median | runs | all runs (s) | includes |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    update_section(TITLE, body)
    print(body)


if __name__ == "__main__":
    main()

"""Runs ON the droplet (python3, standard library only): gathers every fact a run needs in one
remote command. Reads a JSON request from its first argument, prints one JSON document.

Request: {"stat": [paths], "read": [paths], "packages": [names], "user": name,
          "units_if_deployed": [[current link, [unit instances], worker unit prefix,
                                  [types with units of their own]], ...],
          "services": [units that must be enabled at boot and active],
          "certificates": [PEM certificate paths to read names and expiry from],
          "groups": [group names whose gid a file's group needs]}
"""

import contextlib
import grp
import hashlib
import json
import os
import pwd
import ssl
import stat
import subprocess
import sys


def describe(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"type": "missing"}
    except OSError as exc:
        return {"type": "error", "error": str(exc)}
    info = {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISLNK(st.st_mode):
        info.update(type="link", target=os.readlink(path))
    elif stat.S_ISDIR(st.st_mode):
        info.update(type="dir")
    else:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(65536), b""):
                digest.update(block)
        info.update(type="file", sha256=digest.hexdigest(), size=st.st_size)
    return info


def packages(names):
    if not names:
        return {}
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split()[0] for line in result.stdout.splitlines() if line.split()[-1:] == ["installed"]
    }
    return {name: name in installed for name in names}


def user(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"uid": entry.pw_uid, "gid": entry.pw_gid}


def group_ids(names):
    """{name: gid, or None when the group does not exist}."""
    found = {}
    for name in names:
        try:
            found[name] = grp.getgrnam(name).gr_gid
        except KeyError:
            found[name] = None
    return found


def unit_states(units):
    if not units:
        return {}
    result = subprocess.run(
        ["systemctl", "is-active", *units], capture_output=True, text=True, check=False
    )
    states = result.stdout.split()
    if len(states) != len(units):
        return {unit: "unknown" for unit in units}
    return dict(zip(units, states, strict=True))


def deployed_units(entries):
    """The units of the slots that have a `current` release: the listed ones, and a worker
    unit for each other process type the release's spec declares."""
    units = []
    for current, listed, worker_prefix, own in entries:
        if not os.path.lexists(current):
            continue
        units += listed
        if worker_prefix:
            units += [worker_prefix + t + ".service" for t in declared_types(current, own)]
    return units


def declared_types(current, own):
    """The process types (release phase aside) the spec in `current` declares, but `own`."""
    text = read(os.path.join(current, ".process-spec.json"))
    try:
        types = list(json.loads(text)["processes"])
    except (TypeError, ValueError, KeyError):
        return []
    return [t for t in types if t not in own and t != "release"]


def service_states(units):
    """{unit: {"enabled": is-enabled's word, "active": is-active's word}}; a unit that does not
    exist (its package not installed yet) reads "not-found"."""
    states = {}
    for unit in units:
        enabled = subprocess.run(
            ["systemctl", "is-enabled", unit], capture_output=True, text=True, check=False
        ).stdout.split()
        active = subprocess.run(
            ["systemctl", "is-active", unit], capture_output=True, text=True, check=False
        ).stdout.split()
        states[unit] = {
            "enabled": enabled[0] if enabled else "not-found",
            "active": active[0] if active else "unknown",
        }
    return states


def certificates(paths):
    """{path: {"exists", "names", "not_after" (epoch seconds), "issuer"}} of PEM certificates,
    read with openssl (the standard library cannot parse one)."""
    found = {}
    for path in paths:
        if not os.path.isfile(path):
            found[path] = {"exists": False}
            continue
        result = subprocess.run(
            ["openssl", "x509", "-in", path, "-noout", "-enddate", "-issuer", "-ext",
             "subjectAltName"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        info = {"exists": result.returncode == 0, "names": [], "not_after": None, "issuer": ""}
        for line in result.stdout.splitlines():
            line = line.strip()
            if line.startswith("notAfter="):
                with contextlib.suppress(ValueError):
                    info["not_after"] = ssl.cert_time_to_seconds(line.split("=", 1)[1])
            elif line.startswith("issuer="):
                info["issuer"] = line.split("=", 1)[1].strip()
            else:
                info["names"] += [
                    n.strip()[4:] for n in line.split(",") if n.strip().startswith("DNS:")
                ]
        found[path] = info
    return found


def read(path):
    # newline="": the text exactly as on disk (a CRLF file stays CRLF), so a restore writes
    # back what was there; changes are detected by the sha256 in describe().
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read()
    except OSError:
        return None


def main():
    request = json.loads(sys.argv[1])
    facts = {
        "stat": {path: describe(path) for path in request.get("stat", [])},
        "content": {path: read(path) for path in request.get("read", [])},
        "packages": packages(request.get("packages", [])),
        "user": user(request["user"]) if request.get("user") else None,
        "units": unit_states(deployed_units(request.get("units_if_deployed", []))),
        "services": service_states(request.get("services", [])),
        "certificates": certificates(request.get("certificates", [])),
        "groups": group_ids(request.get("groups", [])),
        "euid": os.geteuid(),
    }
    json.dump(facts, sys.stdout)


# `python3 -c TEXT` runs it as __main__ on the droplet; importing it here runs nothing.
if __name__ == "__main__":
    main()

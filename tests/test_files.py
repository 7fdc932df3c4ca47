"""The data directory is private (smartpos.files, docs/architecture.md "Files on disk"):
real files and modes, written by the real command under a permissive umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from smartpos.config import Settings
from smartpos.db.engine import make_engine
from smartpos.devices.printer import print_receipts
from smartpos.receipts.model import Copy
from tests.receipts.test_model import make_receipt

pytestmark = pytest.mark.integration

SMARTPOS = [sys.executable, "-c", "from smartpos.cli import app; app()"]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMARTPOS_HOME": str(home)}
    return subprocess.run(
        [*SMARTPOS, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: new files 0644, dirs 0755
    )


def modes(home: Path) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(home.stat().st_mode))}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def assert_private(home: Path) -> None:
    for name, mode in modes(home).items():
        path = home / name
        expected = "0o700" if path.is_dir() else "0o600"
        assert mode == expected, (name, mode)


def installed(home: Path) -> None:
    init = run(home, "host", "init", "--json")
    assert init.returncode == 0, init.stderr
    data = __import__("json").loads(init.stdout)["data"]
    provision = run(
        home,
        "terminal",
        "provision",
        *("--tid", data["tid"], "--mid", data["mid"], "--tmk", data["tmk"]),
        *("--kcv", data["tmk_kcv"], "--fingerprint", data["host_fingerprint"]),
    )
    assert provision.returncode == 0, provision.stderr


def test_a_fresh_installation_is_private(tmp_path: Path) -> None:
    home = tmp_path / "a" / "smartpos"  # the parents are created too
    installed(home)
    assert {"host/host.db", "host/kek.bin", "host/host-key.pem", "host/host-cert.pem"} <= set(
        modes(home)
    )
    assert {"terminal.db", "terminal/kek.bin", "terminal.db.migrate-lock"} <= set(modes(home))
    assert_private(home)
    assert oct(stat.S_IMODE((tmp_path / "a").stat().st_mode)) == "0o700"

    # The journal files SQLite makes while a database is in use, and the printer's file.
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{home / 'terminal.db'}")
        with engine.connect() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.commit()
            assert (home / "terminal.db-wal").exists() and (home / "terminal.db-shm").exists()
            print_receipts(Settings(home=home, printer="file"), [make_receipt(copy=Copy.MERCHANT)])
            assert (home / "printer.out").exists()
            assert_private(home)
        engine.dispose()
    finally:
        os.umask(old)


def test_a_loose_data_directory_is_tightened_with_one_warning(tmp_path: Path) -> None:
    home = tmp_path / "smartpos"
    installed(home)
    os.chmod(home, 0o755)
    os.chmod(home / "terminal.db", 0o644)
    os.chmod(home / "host" / "host.db", 0o666)
    os.chmod(home / "host" / "kek.bin", 0o640)

    done = run(home, "host", "cards", "--json")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning:"), done.stderr
    assert "4 entries open to other users" in warnings[0]
    assert_private(home)
    again = run(home, "host", "cards", "--json")
    assert again.stderr == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_data_that_belongs_to_another_user_is_refused_and_left_alone(tmp_path: Path) -> None:
    home = tmp_path / "smartpos"
    installed(home)
    foreign = home / "host" / "host.db"
    os.chown(foreign, 65534, 65534)
    os.chmod(foreign, 0o644)
    os.chmod(home / "terminal.db", 0o644)
    before = modes(home)

    done = run(home, "host", "check", "--json")
    assert done.returncode == 1
    result = __import__("json").loads(done.stdout)
    assert (result["ok"], result["code"]) == (False, "files"), result
    assert "belongs to user id 65534" in result["message"] and "host.db" in result["message"]
    assert foreign.stat().st_uid == 65534
    assert modes(home) == before, "a refusal changes nothing, not even the other files' modes"

"""A hostile tenant's job on a local site, trying what the issue found it could do.

Each attack is run by a real job through the API and asserted to fail; each test also
checks that the job did run (so a job that never started cannot pass for a blocked one).
"""

from __future__ import annotations

import hashlib
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from tests.security.conftest import SECRET_NAME, SECRET_VALUE, SecureService

# An interpreter every account may run (the test's own may sit under root's home).
PY = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable


def _try(path: str) -> list[str]:
    """A command that says READ if it could read `path` and DENIED if not."""
    return ["sh", "-c", f'if cat "{path}" >/dev/null 2>&1; then echo READ; else echo DENIED; fi']


def test_a_job_runs_as_its_owners_mapped_account(secure_service: SecureService):
    alice = secure_service.user("alice", "research")
    job, out = secure_service.run(alice, ["sh", "-c", "id -u; id -g; echo $USER; pwd"])
    assert job["state"] == "completed", job
    expected = pwd.getpwnam("arkt-research-alice")
    uid, gid, user, cwd = out.split()
    assert (int(uid), int(gid), user) == (expected.pw_uid, expected.pw_gid, expected.pw_name)
    assert int(uid) != 0
    # The run directory is outside the data directory, and the job's own.
    data = str(secure_service.data_dir)
    assert not cwd.startswith(data + "/") and cwd.startswith(data + "-runs/")


def test_a_job_cannot_read_the_database_or_other_runs_records(secure_service: SecureService):
    bob = secure_service.user("bob", "nhs")
    db = secure_service.data_dir / "arkwright.db"
    assert db.exists()
    for target in (db, secure_service.data_dir / "runs"):
        job, out = secure_service.run(bob, _try(str(target)))
        assert job["state"] == "completed", job
        assert out.strip() == "DENIED", f"{target}: {out!r}"
    listing, out = secure_service.run(bob, ["sh", "-c", f"ls {secure_service.data_dir} || true"])
    assert listing["state"] == "completed" and "arkwright.db" not in out


def test_a_job_cannot_see_the_servers_environment(secure_service: SecureService):
    carol = secure_service.user("carol", "research")
    job, out = secure_service.run(carol, ["env"], env={"MINE": "visible"})
    assert job["state"] == "completed", job
    assert "MINE=visible" in out  # the job's own env arrives
    assert SECRET_NAME not in out and SECRET_VALUE not in out
    assert "ARKWRIGHT_DATABASE_URL" not in out


def test_a_tenant_cannot_read_another_tenants_run(secure_service: SecureService):
    dave = secure_service.user("dave", "research")
    erin = secure_service.user("erin", "nhs")
    job, _ = secure_service.run(dave, ["sh", "-c", "echo programme-a-result > result.txt"])
    assert job["state"] == "completed", job
    handle = secure_service.handle(job["id"])
    result = f"{handle['work_dir']}/result.txt"
    request = f"{handle['dir']}/request.json"
    for target in (result, request, f"{handle['dir']}/stdout.log"):
        other, out = secure_service.run(erin, _try(target))
        assert other["state"] == "completed", other
        assert out.strip() == "DENIED", f"{target}: {out!r}"
    # The owner can read their own run directory (so DENIED above is not a broken path).
    own, out = secure_service.run(dave, ["cat", result])
    assert own["state"] == "completed" and out.strip() == "programme-a-result"


def test_a_plain_users_job_cannot_write_itself_an_admin_token(secure_service: SecureService):
    """The escalation the issue found: a job opens the database and adds a token for the
    admin. It worked in seconds while jobs ran as the server's account; now the job is
    refused and the token it made does not authenticate."""
    mallory = secure_service.user("mallory", "research")
    forged = "ark_" + secrets.token_urlsafe(24)
    digest = hashlib.sha256(forged.encode()).hexdigest()
    db = secure_service.data_dir / "arkwright.db"
    script = (
        "import sqlite3\n"
        f"c = sqlite3.connect({str(db)!r})\n"
        "admin = c.execute(\"select id from users where role = 'admin'\").fetchone()[0]\n"
        "c.execute('insert into tokens (user_id, token_hash, prefix, created_at) '\n"
        f"          'values (?, ?, ?, current_timestamp)', (admin, {digest!r}, 'forged'))\n"
        "c.commit()\n"
        "print('FORGED')\n"
    )
    job, out = secure_service.run(mallory, [PY, "-c", script])
    errors = Path(secure_service.handle(job["id"])["dir"], "stderr.log").read_text()
    assert job["state"] == "failed", job
    assert "unable to open database file" in errors, errors  # not some other failure
    assert "FORGED" not in out
    forged_auth = {"Authorization": f"Bearer {forged}"}
    assert secure_service.client.get("/v1/audit", headers=forged_auth).status_code == 401
    # The same script, run as the server's account (what every job was before), does
    # make an admin: the attack is real, and only the account stops it.
    subprocess.run([PY, "-c", script], check=True, capture_output=True)
    assert secure_service.client.get("/v1/audit", headers=forged_auth).status_code == 200

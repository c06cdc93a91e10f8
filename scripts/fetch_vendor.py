"""Fetch the dashboard's chart library from the npm registry at install time.

Pinned by version and by the registry's sha512 integrity, so what is served is exactly
what was reviewed; nothing third-party is committed, and nothing is fetched at run time.
Run by `make install`; does nothing when the files are already there.
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from pathlib import Path

PACKAGES = [
    # (npm name, version, sha512 integrity, files to keep from the tarball)
    (
        "chart.js",
        "4.5.1",
        "sha512-GIjfiT9dbmHRiYi6Nl2yFCq7kkwdkp1W/lp2J99rX0yo9tgJGn3lKQATztIjb5tVtevcBtIdICNWqlq5+E8/Pw==",
        {
            "package/dist/chart.umd.min.js": "chart.umd.min.js",
            "package/LICENSE.md": "chart.js.LICENSE.md",
        },
    ),
]
VENDOR = Path(__file__).resolve().parents[1] / "arkwright" / "service" / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


def fetch(name: str, version: str, integrity: str, keep: dict[str, str]) -> None:
    if all((VENDOR / target).exists() for target in keep.values()):
        return
    url = f"{REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        sys.exit(f"{name}@{version}: integrity mismatch (got {digest}); refusing to install it")
    VENDOR.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member, target in keep.items():
            extracted = tar.extractfile(member)
            if extracted is None:
                sys.exit(f"{name}@{version}: {member} is not in the package")
            partial = VENDOR / f"{target}.partial"
            partial.write_bytes(extracted.read())
            partial.rename(VENDOR / target)
    print(f"fetched {name}@{version} into {VENDOR}", file=sys.stderr)


if __name__ == "__main__":
    for package in PACKAGES:
        fetch(*package)

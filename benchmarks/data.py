"""Seeded synthetic populations for the benchmark, generated once and cached.

    benchmarks/.data/n{employees}-s{seed}-g{hash of examples/generate.py}/

holds what `examples/generate.py`'s `generate()` writes (facts, lines, ratings, teams, team
and company facts) plus `business-roles/`: the same files cut down to the employees of the
business-roles policy (every row of an employee whose roles are all business roles), which
the hand-written end-to-end script and `meritpay run policies/2025-Q3/business-roles.yaml`
both read. A folder is used only when its `meta.json` exists, which is written last, so an
interrupted generation is redone. Changing the generator changes the hash and so the folder.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "examples" / "generate.py"
CACHE = Path(__file__).resolve().parent / ".data"
BUSINESS_ROLES = ("junior_sales_rep", "account_manager", "business_director")
SUBSET = "business-roles"


@dataclass(frozen=True)
class Dataset:
    employees: int
    seed: int
    folder: Path  # everything generate() writes
    business: Path  # the business-roles subset
    generate_seconds: float  # how long generate() took when the folder was made
    subset_seconds: float
    facts_bytes: int
    cached: bool  # found in the cache rather than made by this call


def load_generator() -> ModuleType:
    """examples/generate.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("examples_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


def generator_hash() -> str:
    return hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:10]


def folder_for(employees: int, seed: int, cache: Path = CACHE) -> Path:
    return cache / f"n{employees}-s{seed}-g{generator_hash()}"


def dataset(employees: int, seed: int, cache: Path = CACHE) -> Dataset:
    """The cached population of `employees` for `seed`, generated first if need be."""
    folder = folder_for(employees, seed, cache)
    meta_path = folder / "meta.json"
    cached = meta_path.exists()
    if not cached:
        if folder.exists():
            shutil.rmtree(folder)  # an interrupted generation
        started = time.perf_counter()
        load_generator().generate(folder / "all", employees=employees, seed=seed)
        generated = time.perf_counter() - started
        started = time.perf_counter()
        business_subset(folder / "all", folder / SUBSET)
        subset = time.perf_counter() - started
        meta = {"employees": employees, "seed": seed, "generator": generator_hash(),
                "generate_seconds": round(generated, 3), "subset_seconds": round(subset, 3)}
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    return Dataset(employees, seed, folder / "all", folder / SUBSET,
                   float(meta["generate_seconds"]), float(meta["subset_seconds"]),
                   (folder / "all" / "facts.csv").stat().st_size, cached)


def business_subset(source: Path, target: Path) -> None:
    """Copy the files of the employees whose every row has a business role; no teams (the
    business-roles policy has no team facts or pools)."""
    target.mkdir(parents=True, exist_ok=True)
    other: set[str] = set()
    with (source / "facts.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        employee, role = header.index("employee"), header.index("role")
        for row in reader:
            if row[role] not in BUSINESS_ROLES:
                other.add(row[employee])
    for name in ("facts.csv", "lines.csv", "ratings.csv"):
        with (source / name).open(encoding="utf-8", newline="") as handle, \
                (target / name).open("w", encoding="utf-8", newline="") as out:
            reader = csv.reader(handle)
            writer = csv.writer(out, lineterminator="\n")
            header = next(reader)
            writer.writerow(header)
            column = header.index("employee")
            writer.writerows(row for row in reader if row[column] not in other)
    shutil.copyfile(source / "company_facts.csv", target / "company_facts.csv")


def main(argv: list[str]) -> None:
    """python -m benchmarks.data EMPLOYEES [SEED]: make (or find) one population."""
    employees = int(argv[0])
    seed = int(argv[1]) if len(argv) > 1 else load_generator().SEED
    found = dataset(employees, seed)
    print(f"{found.folder.parent} ({'cached' if found.cached else 'generated'}: "
          f"{found.generate_seconds:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])

"""What a function can import: what Lambda's Python runtime has, and nothing of the server's.

On Lambda a handler imports the standard library, the AWS SDK the runtime ships (boto3,
botocore and their dependencies), its own code and what it bundled or put in a layer. squall's
instances fork from a zygote that runs in the server's environment, where starlette,
uvicorn, pydantic, orjson and the rest are importable too; left so, a line missing from a
function's requirements.txt would go unnoticed here and break on Lambda.

So the node keeps a runtime folder (`build_runtime_folder`) of links to the packages Lambda's
runtime has (RUNTIME_PACKAGES, from the server's own installation: docs/lambda.md says which
versions), plus squall itself for `squall.sdk`, and puts it last on each function's path.
Before the handler is imported, the instance (`restrict_imports`) drops every other
folder of the server's from `sys.path`, keeping the standard library, and forgets the
modules the zygote imported from them, so that importing one looks for it again, on the
function's path only.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3", "squall")
"""Top-level names a function imports without bundling them: the AWS SDK and its dependencies,
as Lambda's Python runtime ships them, and squall (for squall.sdk)."""


def build_runtime_folder(folder: Path) -> Path:
    """`folder` holding a link to each of RUNTIME_PACKAGES as this server has it installed
    (made again if it is stale); returns it. Readable by every function's uid (the node's own
    files are not)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    for name in RUNTIME_PACKAGES:
        target = _location(name)
        if target is None:
            continue
        link = folder / os.path.basename(target)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return folder


def _location(name: str) -> str | None:
    """The package folder (or module file) of `name` as installed, or None if it is not."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return os.path.realpath(list(spec.submodule_search_locations)[0])
    return os.path.realpath(spec.origin) if spec.origin else None


def standard_library_path() -> list[str]:
    """The entries of `sys.path` that hold the standard library (not site-packages)."""
    roots = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
    return [p for p in sys.path if p and "-packages" not in p
            and any(os.path.realpath(p).startswith(root + os.sep) for root in roots)]


class _Plan:
    """What `restrict_imports` keeps and drops, worked out once (in the zygote, before it forks:
    each instance then only applies it)."""

    def __init__(self) -> None:
        self.kept = standard_library_path()
        self.gone = [p for p in sys.path if p and p not in self.kept]
        self.prefixes = tuple({prefix + os.sep for p in self.gone for prefix in (p.rstrip(os.sep), os.path.realpath(p))})
        self.seen = set(sys.modules)
        self.foreign = [name for name in self.seen if self.is_foreign(name)]

    def is_foreign(self, name: str) -> bool:
        """Whether module `name` (imported) came from a folder the function may not import from."""
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top in RUNTIME_PACKAGES:
            return False
        origin = getattr(sys.modules.get(name), "__file__", None)
        return isinstance(origin, str) and origin.startswith(self.prefixes)


_plan: _Plan | None = None


def prepare() -> None:
    """Work out `restrict_imports`'s plan now (the zygote calls it once its modules are in)."""
    global _plan
    _plan = _Plan()


def restrict_imports(function_path: list[str]) -> None:
    """Make `function_path` (the code, its deps, the runtime folder) and the standard library
    the whole import path, and forget the modules loaded from anywhere else (the bootstrap
    keeps the ones it holds; a handler that imports one finds it on its own path or not at
    all). About 20 us in an instance forked from a prepared zygote."""
    plan = _plan or _Plan()
    sys.path[:] = [*function_path, *plan.kept]
    for path in plan.gone:  # the standard library's finders stay: making them again costs a listdir each
        if path not in function_path:
            sys.path_importer_cache.pop(path, None)
    later = [name for name in sys.modules.keys() - plan.seen if plan.is_foreign(name)]
    for name in (*plan.foreign, *later):
        sys.modules.pop(name, None)

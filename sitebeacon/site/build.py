"""Render a small Markdown blog into a static site, then inject the client module.

`sitebeacon build` exists so that a blog author can go from Markdown to a measured site in one
command; for sites built by another generator, `sitebeacon inject` is the tool.

Source layout (SRC)::

    SRC/index.md            optional: front matter `title`/`description` name the site, its body
                            is the index's introduction; the index lists posts newest first
    SRC/posts/*.md          posts  -> OUT/posts/<slug>/index.html   (URL /posts/<slug>/)
    SRC/*.md                pages  -> OUT/<slug>/index.html         (URL /<slug>/)
    SRC/_layouts/*.html     Jinja2 layouts: index.html, post.html, page.html (+ base.html etc.)
    SRC/static/             copied as-is -> OUT/static/
    SRC/sitebeacon.toml     the configuration (found by the CLI, not read here)

Names starting with `_` or `.` are ignored elsewhere in SRC (so the default OUT, `SRC/_site`,
is never read back as input). The slug is the front matter `slug`, else the file name without a
leading `YYYY-MM-DD-` date, lower-cased with runs of other characters turned into `-`.

Front matter is YAML between a first line `---` and a closing `---` (or `...`):
`title` (string, required), `date` (YYYY-MM-DD, required for posts, also taken from a date
prefix of the file name), `layout` (default `post`, `page` or `index`), `description`, `draft`
(true: not built, not listed) and `slug`. Other keys are kept in `page.meta`. Layouts see
`site` (title, description, posts, pages) and `page` (title, date, description, url, content,
meta, ...); undefined names fail the build (StrictUndefined) and every value is HTML-escaped
except the rendered Markdown.

Output is all or nothing: every page is rendered in memory first, then written with the static
files into a fresh hidden directory beside OUT, injected there, and swapped in with two renames.
OUT's previous content is thereby replaced as a whole (stale pages disappear); a failed or
interrupted build leaves OUT as it was. To protect directories sitebeacon did not make, an
existing non-empty OUT is only replaced if it carries the `.sitebeacon-build` marker file that
every build writes. A build killed outright (SIGKILL, power loss) can leave a hidden
`.<OUT>.sitebeacon-<hex>` directory beside OUT, never a half-written OUT; the next build of
the same OUT deletes such directories once they are older than `STALE_AFTER` (younger ones may
belong to a build running right now).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml
from markdown_it import MarkdownIt
from markupsafe import Markup
from mdit_py_plugins.footnote import footnote_plugin

from sitebeacon.config import Config
from sitebeacon.errors import SitebeaconError
from sitebeacon.site.generate import build_module
from sitebeacon.site.inject import inject_site

MARKER = ".sitebeacon-build"
"""File written into every OUT; its presence means OUT may be replaced by the next build."""
STALE_AFTER = 3600.0
"""Seconds after which a staging directory beside OUT is taken for one of a killed build."""

KNOWN_KEYS = ("title", "date", "layout", "description", "draft", "slug")
RESERVED_SLUGS = ("posts", "static", "index")
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")
DATE_PREFIX = re.compile(r"(\d{4}-\d{2}-\d{2})-(.+)\Z")
LAYOUT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


class BuildError(SitebeaconError):
    """A problem in the source site; the message names the file (and line when known)."""


@dataclass(frozen=True)
class Page:
    """One output page as the layouts see it."""

    kind: str  # "post", "page" or "index"
    source: str  # the Markdown file (SRC joined with its path), for messages
    slug: str
    url: str
    output: str  # path relative to OUT
    title: str
    date: dt.date | None
    description: str
    layout: str
    draft: bool
    content: Markup
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Site:
    """What every layout sees as `site`."""

    title: str
    description: str
    posts: tuple[Page, ...]
    pages: tuple[Page, ...]


@dataclass(frozen=True)
class BuildReport:
    """What a build produced; `summary_lines` is what the CLI prints."""

    out: Path
    posts: int
    pages: int
    drafts: int
    static_files: int
    inject_lines: tuple[str, ...]

    def summary_lines(self) -> list[str]:
        lines = [
            f"built {self.out}: index, {_count(self.posts, 'post')}, {_count(self.pages, 'page')}"
            f", {_count(self.static_files, 'static file')} ({_count(self.drafts, 'draft')} skipped)"
        ]
        lines.extend(self.inject_lines)
        return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def markdown_renderer() -> MarkdownIt:
    """CommonMark plus tables, strikethrough and footnotes; raw HTML is allowed (own content)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).use(footnote_plugin)


def split_front_matter(text: str, origin: str) -> tuple[dict[str, Any], str]:
    """Return (front matter, Markdown body); a file without a leading `---` has no front matter."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    for index in range(1, len(lines)):
        if lines[index].rstrip() in ("---", "..."):
            break
    else:
        raise BuildError(f"{origin}:1: front matter opened with --- is never closed")
    try:
        data = yaml.safe_load("".join(lines[1:index]))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 2}" if mark is not None else ""
        problem = error.problem or error.context or "syntax error"
        raise BuildError(f"{origin}{line}: front matter is not valid YAML: {problem}") from error
    except (yaml.YAMLError, ValueError) as error:
        raise BuildError(f"{origin}: front matter is not valid YAML: {error}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BuildError(
            f"{origin}: front matter must be key: value pairs, not a {type(data).__name__}"
        )
    return data, "".join(lines[index + 1 :])


def _bad(origin: str, key: str, value: Any, allowed: str) -> BuildError:
    return BuildError(f"{origin}: front matter {key} = {value!r} is not allowed; {allowed}")


def _as_date(origin: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise _bad(origin, "date", value, "use a date like 2024-05-31")


def slugify(name: str) -> str:
    """Lower-case, with every run of characters other than a-z, 0-9, `_` turned into `-`."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-_")


def read_page(path: Path, kind: str, md: MarkdownIt) -> Page:
    """Parse one Markdown file into a Page (front matter checked, body rendered)."""
    origin = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BuildError(f"{origin}: not UTF-8 ({error.reason} at byte {error.start})") from error
    except OSError as error:
        raise BuildError(f"{origin}: cannot read: {error.strerror or error}") from error
    meta, body = split_front_matter(text, origin)

    stem, date_from_name = path.stem, None
    prefixed = DATE_PREFIX.match(stem)
    if prefixed is not None:
        date_from_name, stem = _as_date(origin, prefixed.group(1)), prefixed.group(2)

    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        if "title" not in meta:
            raise BuildError(f"{origin}: front matter has no title (add `title: ...` between ---)")
        raise _bad(origin, "title", title, "use a non-empty string (quote it)")
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise _bad(origin, "description", description, "use a string (quote it)")
    draft = meta.get("draft", False)
    if not isinstance(draft, bool):
        raise _bad(origin, "draft", draft, "use true or false")
    date = _as_date(origin, meta["date"]) if "date" in meta else date_from_name
    if kind == "post" and date is None:
        raise BuildError(f"{origin}: a post needs a date (front matter `date: YYYY-MM-DD`)")

    layout = meta.get("layout", kind)
    if not isinstance(layout, str) or not LAYOUT_NAME.match(layout):
        raise _bad(origin, "layout", layout, "use the name of a file in _layouts, like post")
    layout = layout if layout.endswith(".html") else layout + ".html"

    if kind == "index":
        slug, url, output = "", "/", "index.html"
    else:
        slug = meta.get("slug", slugify(stem))
        if not isinstance(slug, str) or not SLUG.match(slug):
            raise _bad(origin, "slug", slug, "use lower-case letters, digits, - and _")
        if kind == "page" and slug in RESERVED_SLUGS:
            raise BuildError(f"{origin}: page slug {slug!r} is reserved (posts, static, index)")
        prefix = "/posts/" if kind == "post" else "/"
        url = f"{prefix}{slug}/"
        output = url.strip("/") + "/index.html"

    return Page(
        kind=kind,
        source=origin,
        slug=slug,
        url=url,
        output=output,
        title=title,
        date=date,
        description=description,
        layout=layout,
        draft=draft,
        content=Markup(md.render(body)),
        meta={key: value for key, value in meta.items() if key not in KNOWN_KEYS},
    )


def _markdown_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.glob("*.md")
        if path.is_file() and not path.name.startswith(("_", "."))
    )


def collect_pages(src: Path) -> tuple[list[Page], int]:
    """All pages to build (index, posts newest first, other pages) and the draft count."""
    md = markdown_renderer()
    posts = [read_page(path, "post", md) for path in _markdown_files(src / "posts")]
    pages = [
        read_page(path, "page", md) for path in _markdown_files(src) if path.name != "index.md"
    ]
    index_file = src / "index.md"
    if index_file.is_file():
        index = read_page(index_file, "index", md)
    else:
        index = Page(
            kind="index",
            source=str(index_file),
            slug="",
            url="/",
            output="index.html",
            title=src.resolve().name,
            date=None,
            description="",
            layout="index.html",
            draft=False,
            content=Markup(""),
        )
    drafts = sum(1 for page in [*posts, *pages] if page.draft)
    posts = [page for page in posts if not page.draft]
    pages = [page for page in pages if not page.draft]
    posts.sort(key=lambda page: page.slug)
    posts.sort(key=lambda page: page.date or dt.date.min, reverse=True)
    pages.sort(key=lambda page: (page.title.lower(), page.slug))

    seen: dict[str, str] = {}
    for page in [*posts, *pages]:
        if page.url in seen:
            raise BuildError(f"{page.source}: URL {page.url} is already used by {seen[page.url]}")
        seen[page.url] = page.source
    return [index, *posts, *pages], drafts


def _template_location(error: BaseException, layouts: Path) -> str:
    """`file:line` of the innermost layout frame in the traceback Jinja rewrote, if any."""
    location = ""
    for frame, line in traceback.walk_tb(error.__traceback__):
        filename = frame.f_code.co_filename
        if filename.endswith(".html") and Path(filename).parent.resolve() == layouts.resolve():
            location = f"{filename}:{line}"
    return location


def _render_one(env: jinja2.Environment, layouts: Path, site: Site, page: Page) -> str:
    """Render one page; any failure of the layout (user code) becomes a one-line BuildError."""
    rendering = f"(rendering {page.source})"
    try:
        return env.get_template(page.layout).render(site=site, page=page)
    except jinja2.TemplateNotFound as error:
        missing = layouts / str(error.name)
        if error.name == page.layout:
            raise BuildError(f"{page.source}: layout {missing} not found") from error
        raise BuildError(
            f"{layouts / page.layout}: template {missing} not found {rendering}"
        ) from error
    except jinja2.TemplateSyntaxError as error:
        where = f"{error.filename}:{error.lineno}"
        message = _one_line(error.message or "")
        raise BuildError(f"{where}: template syntax error: {message} {rendering}") from error
    except Exception as error:  # layouts are user code: any failure names the file
        where = _template_location(error, layouts) or str(layouts / page.layout)
        message = f"{type(error).__name__}: {_one_line(str(error))}"
        raise BuildError(f"{where}: {message} {rendering}") from error


def render_pages(src: Path, pages: list[Page]) -> dict[str, bytes]:
    """Render every page through its layout in memory: {path relative to OUT: HTML bytes}."""
    layouts = src / "_layouts"
    if not layouts.is_dir():
        raise BuildError(f"{layouts}: no layouts directory (needs index.html, post.html, ...)")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(layouts),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    index = pages[0]
    site = Site(
        title=index.title,
        description=index.description,
        posts=tuple(page for page in pages if page.kind == "post"),
        pages=tuple(page for page in pages if page.kind == "page"),
    )
    rendered: dict[str, bytes] = {}
    for page in pages:
        rendered[page.output] = _render_one(env, layouts, site, page).encode("utf-8")
    return rendered


def _static_files(static: Path) -> Iterator[Path]:
    for path in sorted(static.rglob("*")):
        if path.is_file():
            yield path


def _check_paths(src: Path, out: Path) -> None:
    if not src.is_dir():
        raise BuildError(f"{src}: source directory not found")
    real_src, real_out = src.resolve(), out.resolve()
    if real_out == real_src or real_src.is_relative_to(real_out):
        raise BuildError(f"{out}: the output directory would replace the source directory {src}")
    for inner in ("posts", "static", "_layouts"):
        if real_out.is_relative_to(real_src / inner):
            raise BuildError(f"{out}: the output directory is inside {src / inner}")
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: exists and is not a directory")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()):
        raise BuildError(
            f"{out}: not empty and not made by sitebeacon build (no {MARKER}); "
            "remove it or choose another -o"
        )


def _write_tree(root: Path, rendered: dict[str, bytes], static: Path) -> int:
    for relative, data in rendered.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    count = 0
    if static.is_dir():
        for path in _static_files(static):
            target = root / "static" / path.relative_to(static)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(path, target)
            except OSError as error:  # the failing side may be either file: name the source
                raise BuildError(f"{path}: cannot copy: {error.strerror or error}") from error
            count += 1
    (root / MARKER).write_text(
        "This directory is written by `sitebeacon build`; the next build replaces it whole.\n",
        encoding="utf-8",
    )
    return count


def _swap_in(staging: Path, out: Path) -> None:
    """Put `staging` at `out`; the previous `out`, if any, is moved aside and then deleted."""
    if not out.exists():
        os.replace(staging, out)
        return
    old = out.parent / f".{out.name}.sitebeacon-old-{secrets.token_hex(4)}"
    os.replace(out, old)
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _staging_names(out_name: str) -> re.Pattern[str]:
    """The names `build_site` and `_swap_in` give their directories beside OUT, and only them."""
    return re.compile(re.escape(f".{out_name}.sitebeacon-") + r"(?:old-)?[0-9a-f]{8}\Z")


def remove_stale_staging(target: Path, *, now: float | None = None) -> list[Path]:
    """Delete the staging (and moved-aside) directories that builds of `target` killed outright
    left beside it: recognised by their exact name pattern and an mtime over STALE_AFTER ago.
    Returns what was removed."""
    names = _staging_names(target.name)
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed  # no parent yet: nothing left behind
    for entry in entries:
        if not names.match(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age > STALE_AFTER:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def build_site(src: Path, out: Path, config: Config) -> BuildReport:
    """Render SRC into OUT (replacing a previous build as a whole) and inject the client module."""
    _check_paths(src, out)
    pages, drafts = collect_pages(src)
    rendered = render_pages(src, pages)

    target = Path(os.path.realpath(out))  # follow a symlinked OUT: the swap happens at its target
    stale = remove_stale_staging(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.sitebeacon-{secrets.token_hex(4)}"
        staging.mkdir()  # mode from the umask, unlike mkdtemp's 0700: OUT is served to the web
    except OSError as error:
        raise BuildError(f"{out}: cannot create the output directory: {error.strerror}") from error
    try:
        static_count = _write_tree(staging, rendered, src / "static")
        injected = inject_site(staging, config, build_module(config))
        inject_lines = tuple(
            line.replace(str(staging), str(out)) for line in injected.summary_lines()
        )
        _swap_in(staging, target)
    except OSError as error:
        where = str(error.filename or out).replace(str(staging), str(out))
        problem = error.strerror or str(error)
        raise BuildError(f"{where}: {problem} (build stopped; {out} unchanged)") from error
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    posts = sum(1 for page in pages if page.kind == "post")
    return BuildReport(
        out=out,
        posts=posts,
        pages=len(pages) - posts - 1,
        drafts=drafts,
        static_files=static_count,
        inject_lines=inject_lines
        + tuple(f"removed {path.name}, left beside {out} by a killed build" for path in stale),
    )

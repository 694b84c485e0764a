"""`sitebeacon build`: Markdown and front matter through Jinja2 layouts, injected, swapped in."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from files import SAMPLE, tree, write

from sitebeacon.cli import main
from sitebeacon.config import Config
from sitebeacon.site.build import (
    MARKER,
    STALE_AFTER,
    BuildError,
    build_site,
    slugify,
    split_front_matter,
)

SCRIPT_MARK = "data-sitebeacon"  # the attribute inject.py puts on its <script>

LAYOUTS = {
    "base.html": (
        "<!doctype html>\n<html><head><title>{{ page.title }} | {{ site.title }}</title></head>\n"
        "<body>{% block main %}{% endblock %}</body></html>\n"
    ),
    "post.html": (
        '{% extends "base.html" %}{% block main %}<h1>{{ page.title }}</h1>'
        "<time>{{ page.date.isoformat() }}</time>{{ page.content }}{% endblock %}"
    ),
    "page.html": (
        '{% extends "base.html" %}{% block main %}<h1>{{ page.title }}</h1>'
        "{{ page.content }}{% endblock %}"
    ),
    "index.html": (
        '{% extends "base.html" %}{% block main %}{{ page.content }}<ul>\n'
        "{% for post in site.posts %}"
        '<li><a href="{{ post.url }}">{{ post.title }}</a></li>\n'
        "{% endfor %}</ul>{% endblock %}"
    ),
}


def post(title: str, date: str, body: str = "Body text.", **extra: str) -> str:
    lines = [f"title: {title}", f"date: {date}", *(f"{k}: {v}" for k, v in extra.items())]
    return "---\n" + "\n".join(lines) + "\n---\n" + body + "\n"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small source site: three posts (one a draft), one page, layouts and static files."""
    src = tmp_path / "src"
    for name, text in LAYOUTS.items():
        write(src / "_layouts" / name, text)
    write(src / "index.md", "---\ntitle: My Blog\n---\nWelcome *here*.\n")
    write(src / "posts" / "first.md", post("First", "2024-01-05", "See [second](/posts/second/)."))
    write(src / "posts" / "2024-03-01-second.md", "---\ntitle: Second\n---\n# Two\n")
    write(src / "posts" / "third.md", post("Third", "2024-02-10", "Links: [x](https://x.org/)."))
    write(src / "posts" / "secret.md", post("Secret", "2024-04-01", draft="true"))
    write(src / "about.md", "---\ntitle: About me\n---\nHello.\n")
    write(src / "static" / "style.css", "body { color: #222 }\n")
    write(src / "static" / "img" / "dot.bin", bytes(range(256)))
    write(src / "_drafts" / "ignored.md", "not front matter at all")
    return src


def build(src: Path, out: Path | None = None, config: Config | None = None) -> Path:
    out = out if out is not None else src.parent / "out"
    build_site(src, out, config or Config())
    return out


def html_pages(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


# --- front matter -------------------------------------------------------------------------


def test_front_matter_is_parsed_and_the_body_kept() -> None:
    meta, body = split_front_matter("---\ntitle: Hi\ndate: 2024-05-31\n---\n# Body\n", "x.md")
    assert meta == {"title": "Hi", "date": dt.date(2024, 5, 31)}
    assert body == "# Body\n"


def test_front_matter_variants() -> None:
    assert split_front_matter("# No front matter\n", "x.md") == ({}, "# No front matter\n")
    assert split_front_matter("---\r\ntitle: Hi\r\n...\r\nText", "x.md") == (
        {"title": "Hi"},
        "Text",
    )
    assert split_front_matter("---\n---\nText", "x.md") == ({}, "Text")
    # a thematic break later in the body is not front matter
    assert split_front_matter("Intro\n\n---\n\nMore", "x.md")[0] == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("---\ntitle: Hi\n", r"^x\.md:1: front matter opened with --- is never closed$"),
        ("---\ntitle: Hi\nbad: [1, 2\n---\n", r"^x\.md:4: front matter is not valid YAML"),
        ("---\ntitle: a: b\n---\n", r"^x\.md:2: front matter is not valid YAML"),
        ("---\n- a\n- b\n---\n", r"^x\.md: front matter must be key: value pairs, not a list$"),
        ("---\ndate: 2024-13-45\n---\n", r"^x\.md: front matter is not valid YAML: month"),
    ],
)
def test_broken_front_matter_names_the_file(text: str, expected: str) -> None:
    with pytest.raises(BuildError, match=expected) as caught:
        split_front_matter(text, "x.md")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("date: 2024-01-01", "front matter has no title"),
        ("title: 2024\ndate: 2024-01-01", "title = 2024 is not allowed"),
        ("title: T", "a post needs a date"),
        ("title: T\ndate: soon", "date = 'soon' is not allowed; use a date like 2024-05-31"),
        ("title: T\ndate: 2024-01-01\ndraft: maybe", "draft = 'maybe' is not allowed"),
        ("title: T\ndate: 2024-01-01\ndescription: [a]", "description = ['a'] is not allowed"),
        ("title: T\ndate: 2024-01-01\nslug: Bad Slug", "slug = 'Bad Slug' is not allowed"),
        ("title: T\ndate: 2024-01-01\nlayout: ../x", "layout = '../x' is not allowed"),
    ],
)
def test_bad_front_matter_values(site: Path, front: str, expected: str) -> None:
    bad = write(site / "posts" / "bad.md", f"---\n{front}\n---\nText\n")
    with pytest.raises(BuildError, match=re.escape(expected)) as caught:
        build(site)
    assert str(caught.value).startswith(str(bad))
    assert not (site.parent / "out").exists()


def test_markdown_that_is_not_utf8(site: Path) -> None:
    write(site / "posts" / "latin.md", "---\ntitle: Caf\xe9\n---\n".encode("latin-1"))
    with pytest.raises(BuildError, match=r"latin\.md: not UTF-8"):
        build(site)


# --- layout of the output ---------------------------------------------------------------


def test_slugify() -> None:
    assert slugify("Hello, World!") == "hello-world"
    assert slugify("  Ünïcode & stuff_2 ") == "n-code-stuff_2"
    assert slugify("---") == ""


def test_urls_and_output_paths(site: Path) -> None:
    out = build(site)
    assert sorted(tree(out)) == [
        MARKER,
        "about/index.html",
        "index.html",
        "posts/first/index.html",
        "posts/second/index.html",
        "posts/third/index.html",
        "static/img/dot.bin",
        "static/style.css",
    ]
    second = (out / "posts" / "second" / "index.html").read_text()
    assert "<time>2024-03-01</time>" in second  # date taken from the file name prefix
    assert "<h1>Two</h1>" in second
    assert '<a href="/posts/second/">second</a>' in (out / "posts/first/index.html").read_text()


def test_slug_from_front_matter_and_duplicates(site: Path) -> None:
    write(site / "posts" / "renamed.md", post("R", "2024-01-01", slug="custom-name"))
    out = build(site)
    assert (out / "posts" / "custom-name" / "index.html").is_file()
    write(site / "posts" / "clash.md", post("C", "2024-01-02", slug="first"))
    with pytest.raises(BuildError, match=r"URL /posts/first/ is already used by .*first\.md"):
        build(site, site.parent / "out2")


def test_page_slug_cannot_shadow_posts_or_static(site: Path) -> None:
    write(site / "static.md", "---\ntitle: Static\n---\n")
    with pytest.raises(BuildError, match=r"static\.md: page slug 'static' is reserved"):
        build(site)


def test_index_lists_posts_newest_first_without_drafts(site: Path) -> None:
    write(site / "posts" / "same-day-b.md", post("Same day B", "2024-02-10"))
    out = build(site)
    index = (out / "index.html").read_text()
    titles = re.findall(r'<li><a href="[^"]+">([^<]+)</a></li>', index)
    # newest first; posts of the same day in slug order
    assert titles == ["Second", "Same day B", "Third", "First"]
    assert "<p>Welcome <em>here</em>.</p>" in index
    assert "<title>My Blog | My Blog</title>" in index


def test_drafts_are_neither_built_nor_listed(site: Path) -> None:
    out = site.parent / "out"
    report = build_site(site, out, Config())
    assert not (out / "posts" / "secret").exists()
    assert "Secret" not in "".join(p.read_text() for p in html_pages(out))
    assert (report.posts, report.pages, report.drafts, report.static_files) == (3, 1, 1, 2)
    assert report.summary_lines()[0] == (
        f"built {out}: index, 3 posts, 1 page, 2 static files (1 draft skipped)"
    )


def test_titles_are_escaped_but_markdown_html_is_not(site: Path) -> None:
    write(
        site / "posts" / "xss.md",
        "---\ntitle: '<script>alert(1)</script> & \"Q\"'\ndate: 2024-06-01\n---\n"
        "Raw <span class=k>html</span> & text.\n",
    )
    out = build(site)
    page = (out / "posts" / "xss" / "index.html").read_text()
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Q&#34;</h1>" in page
    assert "<script>alert(1)" not in page
    assert "Raw <span class=k>html</span> &amp; text." in page
    assert "&lt;script&gt;alert(1)" in (out / "index.html").read_text()


def test_static_files_are_copied_byte_for_byte(site: Path) -> None:
    out = build(site)
    assert (out / "static" / "img" / "dot.bin").read_bytes() == bytes(range(256))
    assert (out / "static" / "style.css").read_bytes() == (site / "static/style.css").read_bytes()


def test_every_page_carries_the_client_module(site: Path) -> None:
    out = build(site, config=Config(endpoint="/hits"))
    pages = html_pages(out)
    assert len(pages) == 5
    for page in pages:
        text = page.read_text()
        assert text.count(SCRIPT_MARK) == 1, page
        head = text[: text.index("</head>")]
        assert SCRIPT_MARK in head and '"/hits"' in head, page


def test_output_is_readable_like_any_new_file(site: Path) -> None:
    """The staging directory must not keep mkdtemp's 0700: OUT is served by a web server."""
    out = build(site)
    reference = site.parent / "reference"
    reference.mkdir()
    (reference / "file").write_text("x")
    assert out.stat().st_mode == reference.stat().st_mode
    for page in html_pages(out):
        assert page.stat().st_mode == (reference / "file").stat().st_mode, page


# --- errors ------------------------------------------------------------------------------


def test_missing_source_directory(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"nowhere: source directory not found$"):
        build_site(tmp_path / "nowhere", tmp_path / "out", Config())
    assert not (tmp_path / "out").exists()


def test_missing_layout_names_the_page_and_the_layout(site: Path) -> None:
    page = write(site / "posts" / "odd.md", post("Odd", "2024-01-01", layout="gallery"))
    with pytest.raises(BuildError) as caught:
        build(site)
    expected = f"{page}: layout {site / '_layouts' / 'gallery.html'} not found"
    assert str(caught.value) == expected
    assert not (site.parent / "out").exists()


def test_missing_layouts_directory(site: Path) -> None:
    shutil.rmtree(site / "_layouts")
    with pytest.raises(BuildError, match=r"_layouts: no layouts directory"):
        build(site)


def test_template_typo_fails_with_file_and_line(site: Path) -> None:
    write(site / "_layouts" / "page.html", "{{ page.title }}\n<p>{{ page.titel }}</p>\n")
    with pytest.raises(BuildError) as caught:
        build(site)
    message = str(caught.value)
    assert message.startswith(f"{site / '_layouts' / 'page.html'}:2: UndefinedError: ")
    assert "titel" in message and message.endswith(f"(rendering {site / 'about.md'})")
    assert "\n" not in message


def test_template_syntax_error_in_a_parent_layout(site: Path) -> None:
    write(site / "_layouts" / "base.html", "<html>\n{% block main %}\n</html>\n")
    with pytest.raises(BuildError, match=r"base\.html:3: template syntax error: ") as caught:
        build(site)
    assert "\n" not in str(caught.value)


def test_output_may_not_replace_or_sit_inside_the_source(site: Path) -> None:
    for out in (site, site.parent, site / "static" / "site", site / "posts" / "x"):
        with pytest.raises(BuildError, match="output directory"):
            build(site, out)


def test_refuses_to_replace_a_directory_it_did_not_make(site: Path) -> None:
    out = write(site.parent / "mine" / "notes.txt", "precious").parent
    with pytest.raises(BuildError, match=f"not made by sitebeacon build .no {re.escape(MARKER)}"):
        build(site, out)
    assert tree(out) == {"notes.txt": b"precious"}
    empty = site.parent / "empty"
    empty.mkdir()
    build(site, empty)
    assert (empty / "index.html").is_file()


# --- all or nothing ----------------------------------------------------------------------


def test_rebuild_replaces_the_previous_build_whole(site: Path) -> None:
    out = build(site)
    (site / "posts" / "third.md").unlink()
    build(site)
    assert not (out / "posts" / "third").exists()
    assert (out / "posts" / "first" / "index.html").is_file()
    assert sorted(p.name for p in site.parent.iterdir()) == ["out", "src"]  # nothing left over


def test_failed_rebuild_leaves_the_previous_output_as_it_was(site: Path) -> None:
    out = build(site)
    before = tree(out)
    write(site / "posts" / "new.md", post("New", "2024-09-09"))
    write(site / "_layouts" / "post.html", "{{ page.date.year + page.oops }}")
    with pytest.raises(BuildError, match="oops"):
        build(site)
    assert tree(out) == before
    assert sorted(p.name for p in site.parent.iterdir()) == ["out", "src"]


def test_failure_after_rendering_leaves_no_staging_directory(site: Path) -> None:
    """A static file that cannot be read fails the copy into staging; OUT stays as it was."""
    out = build(site)
    before = tree(out)
    broken = site / "static" / "broken.bin"
    if Path("/proc/self/mem").is_file():
        broken.symlink_to("/proc/self/mem")  # a regular file whose read fails, even for root
    else:
        write(broken, "x").chmod(0)
    with pytest.raises(BuildError, match=r"broken\.bin: cannot copy: ") as caught:
        build(site)
    assert "sitebeacon-" not in str(caught.value)  # the staging path is not shown
    assert tree(out) == before
    assert sorted(p.name for p in site.parent.iterdir()) == ["out", "src"]


def test_symlinked_output_is_rebuilt_at_its_target(site: Path) -> None:
    target = site.parent / "deploy" / "blog"
    build(site, target)
    link = site.parent / "current"
    link.symlink_to(target, target_is_directory=True)
    (site / "posts" / "third.md").unlink()
    build(site, link)
    assert link.is_symlink()
    assert not (target / "posts" / "third").exists()


# --- the sample site ---------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.hrefs.append(value)


def links_of(page: Path) -> list[str]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.hrefs


def test_sample_site_builds_into_a_linked_blog(tmp_path: Path) -> None:
    src = tmp_path / "sample_site"
    shutil.copytree(SAMPLE, src, ignore=shutil.ignore_patterns("_site"))
    assert main(["build", str(src)]) == 0
    out = src / "_site"
    posts = sorted((out / "posts").glob("*/index.html"))
    assert len(posts) >= 5
    assert (out / "about" / "index.html").is_file()
    index_links = links_of(out / "index.html")
    for page in posts:
        url = "/" + page.parent.relative_to(out).as_posix() + "/"
        assert url in index_links, url
        article = page.read_text().split("<article", 1)[1].split("</article>", 1)[0]
        hrefs = re.findall(r'href="([^"]+)"', article)
        assert any(urlsplit(h).scheme == "https" and urlsplit(h).netloc for h in hrefs), page
        assert any(h.startswith("/posts/") and h != url for h in hrefs), page
        assert "<pre><code" in article and "<li>" in article, page
    for page in html_pages(out):
        assert page.read_text().count(SCRIPT_MARK) == 1, page
        for href in links_of(page):
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path.startswith("/"):
                continue
            target = out / parts.path.lstrip("/")
            assert target.is_file() or (target / "index.html").is_file(), f"{page}: {href}"


def test_sample_site_config_is_the_default_setup() -> None:
    from sitebeacon.config import load_config

    assert load_config(SAMPLE / "sitebeacon.toml") == Config()


def test_a_killed_build_leaves_a_staging_dir_the_next_build_removes(site: Path) -> None:
    """SIGKILL a real `sitebeacon build` while it writes into its staging directory; the next
    build removes that directory once it is old enough, and nothing that is not its own."""
    for n in range(3000):  # enough files that the kill lands while they are being written
        write(site / "static" / "many" / f"{n:04d}.txt", f"file {n}\n")
    out = site.parent / "out"
    build(site, out)
    before = tree(out)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sitebeacon.cli", "build", str(site), "-o", str(out)],
        cwd=site.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    left: list[Path] = []
    while not left and process.poll() is None and time.monotonic() < deadline:
        left = [p for p in site.parent.glob(".out.sitebeacon-*") if (p / "static").is_dir()]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the build finished before it was killed"
    assert len(left) == 1 and left[0].is_dir()  # what the issue saw: a hidden directory left
    assert tree(out) == before  # OUT itself is whole

    # Look-alikes that are not a killed build's directory of this OUT: kept, however old.
    others = [
        site.parent / ".other.sitebeacon-0123abcd",
        site.parent / ".out.sitebeacon-keep",
        site.parent / "out.sitebeacon-0123abcd",
    ]
    for other in others:
        other.mkdir()
    old = time.time() - STALE_AFTER - 60
    for path in [*others, left[0]]:
        os.utime(path, (old, old))

    young = site.parent / ".out.sitebeacon-89abcdef"  # maybe a build running right now
    young.mkdir()
    report = build_site(site, out, Config())
    assert not left[0].exists()
    assert young.is_dir() and all(other.is_dir() for other in others)
    assert f"removed {left[0].name}, left beside {out} by a killed build" in report.summary_lines()
    assert tree(out) == before

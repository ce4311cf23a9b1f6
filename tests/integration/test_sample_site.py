"""The sample site and its generated media: real files, correct HTTP, pages as documented."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import pytest

from mediavault_local.samples import SAMPLE_POSTS, SamplePost, SampleSite, big_media, generate_media
from mediavault_local.samples.media import ANIMATED, CLIP_VARIANTS, PHOTO, PHOTO_SIZE, POSTER, POSTER_SIZE, ClipSpec

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sample-media")
    generate_media(directory)
    return directory


@pytest.fixture
def site(media_dir: Path) -> Iterator[SampleSite]:
    with SampleSite(media_dir, generate=False, flaky_failures=2) as running:
        yield running


@pytest.fixture
def client(site: SampleSite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.base_url, trust_env=False, timeout=10) as http:
        yield http


def top_level_boxes(path: Path) -> list[str]:
    """Types of the top-level ISO-BMFF boxes, in file order."""
    boxes: list[str] = []
    with path.open("rb") as f:
        while header := f.read(8):
            size = int.from_bytes(header[:4], "big")
            boxes.append(header[4:8].decode("latin-1"))
            if size == 1:
                size = int.from_bytes(f.read(8), "big")
                f.seek(size - 16, 1)
            else:
                f.seek(size - 8, 1)
    return boxes


def meta_content(page: str, key: str) -> str:
    match = re.search(rf'<meta (?:property|name)="{re.escape(key)}" content="([^"]*)"', page)
    assert match, f"no meta {key}"
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# generated media
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [*CLIP_VARIANTS, ANIMATED], ids=lambda s: s.filename)
def test_generated_clips_are_playable(media_dir: Path, spec: ClipSpec) -> None:
    path = media_dir / spec.filename
    assert path.stat().st_size >= 10 * 1024
    # Fast start: ftyp first, the moov before the media data.
    boxes = top_level_boxes(path)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (spec.width, spec.height)
        assert container.duration is not None
        assert container.duration / av.time_base == pytest.approx(spec.seconds, abs=0.1)
        assert bool(container.streams.audio) is spec.audio
        frames = list(container.decode(video=0))
    assert len(frames) == round(spec.seconds * spec.fps)
    assert (frames[-1].width, frames[-1].height) == (spec.width, spec.height)


def test_variants_grow_with_resolution(media_dir: Path) -> None:
    sizes = [(media_dir / spec.filename).stat().st_size for spec in CLIP_VARIANTS]
    assert sizes == sorted(sizes)
    assert sizes[0] * 2 < sizes[-1]


@pytest.mark.parametrize(("name", "size"), [(POSTER, POSTER_SIZE), (PHOTO, PHOTO_SIZE)])
def test_generated_images_are_jpegs(media_dir: Path, name: str, size: tuple[int, int]) -> None:
    path = media_dir / name
    assert path.read_bytes()[:3] == b"\xff\xd8\xff"
    with av.open(str(path)) as container:
        (frame,) = list(container.decode(video=0))
    assert (frame.width, frame.height) == size


def test_generate_media_reuses_cached_files(media_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in media_dir.iterdir()}
    started = time.perf_counter()
    files = generate_media(media_dir)
    assert time.perf_counter() - started < 1
    assert {name: path.stat().st_mtime_ns for name, path in files.items()}.items() <= before.items()
    assert set(files) == {*(s.filename for s in CLIP_VARIANTS), ANIMATED.filename, POSTER, PHOTO}


def test_big_media_is_a_playable_mp4_of_the_requested_size(tmp_path: Path) -> None:
    path = big_media(tmp_path, 5)
    assert path.name == "big-5mb.mp4"
    assert abs(path.stat().st_size - 5 * 1024 * 1024) < 1.5 * 1024 * 1024
    assert top_level_boxes(path)[:2] == ["ftyp", "moov"]
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) >= 2
    assert (frames[0].width, frames[0].height) == (960, 540)


# ---------------------------------------------------------------------------------------------
# /media: ranges, HEAD, headers, broken files
# ---------------------------------------------------------------------------------------------


def test_full_media_response_headers(client: httpx.Client, media_dir: Path) -> None:
    data = (media_dir / "clip-720p.mp4").read_bytes()
    response = client.get("/media/clip-720p.mp4")
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == data
    assert client.get("/media/poster.jpg").headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, None),
        ("bytes=-500", -500, None),
        ("bytes=10-999999999", 10, None),
    ],
)
def test_single_range_requests(
    client: httpx.Client, media_dir: Path, header: str, first: int, last: int | None
) -> None:
    data = (media_dir / "clip-360p.mp4").read_bytes()
    size = len(data)
    start = first % size
    end = size - 1 if last is None else last
    response = client.get("/media/clip-360p.mp4", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.content == data[start : end + 1]


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{more}", "bytes=-0"])
def test_unsatisfiable_range_is_416(client: httpx.Client, media_dir: Path, header: str) -> None:
    size = (media_dir / "clip-360p.mp4").stat().st_size
    response = client.get("/media/clip-360p.mp4", headers={"Range": header.format(size=size, more=size + 10)})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"


def test_malformed_or_multi_range_gets_the_whole_file(client: httpx.Client, media_dir: Path) -> None:
    size = (media_dir / "poster.jpg").stat().st_size
    for header in ("bytes=0-1,5-9", "items=0-10", "bytes=abc"):
        response = client.get("/media/poster.jpg", headers={"Range": header})
        assert response.status_code == 200
        assert len(response.content) == size


def test_head_requests(client: httpx.Client, media_dir: Path) -> None:
    response = client.head("/media/clip-1080p.mp4")
    assert response.status_code == 200
    assert response.headers["content-length"] == str((media_dir / "clip-1080p.mp4").stat().st_size)
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == b""

    ranged = client.head("/media/clip-1080p.mp4", headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206
    assert ranged.headers["content-length"] == "10"

    page = client.head("/posts/og-video")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert int(page.headers["content-length"]) > 0
    assert client.head("/posts/missing").status_code == 404


def test_broken_media_endpoints(client: httpx.Client) -> None:
    fake = client.get("/media/fake.mp4")
    assert fake.status_code == 200
    assert fake.headers["content-type"] == "video/mp4"
    assert fake.content.lstrip().lower().startswith(b"<!doctype html")

    tiny = client.get("/media/tiny.mp4")
    assert tiny.status_code == 200
    assert len(tiny.content) == 5 * 1024
    assert tiny.content[4:8] == b"ftyp"

    empty = client.get("/media/empty.mp4")
    assert empty.status_code == 200
    assert empty.headers["content-length"] == "0"
    assert empty.content == b""


def test_unknown_media_and_traversal_are_404(site: SampleSite) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        for raw in ("/media/../pyproject.toml", "/media/%2e%2e%2fpyproject.toml", "/media/nope.mp4", "/media/"):
            connection.request("GET", raw)
            response = connection.getresponse()
            response.read()
            assert response.status == 404, raw
    finally:
        connection.close()


def test_big_media_is_served_when_present(site: SampleSite, client: httpx.Client) -> None:
    assert client.head("/media/big-1mb.mp4").status_code == 404
    path = big_media(site.media_dir, 1)
    try:
        response = client.head("/media/big-1mb.mp4")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(path.stat().st_size)
        assert client.get("/media/big-1mb.mp4", headers={"Range": "bytes=4-7"}).content == b"ftyp"
    finally:
        path.unlink()


def test_throttle_limits_the_transfer_rate(media_dir: Path) -> None:
    with (
        SampleSite(media_dir, generate=False, throttle_bps=200_000) as slow,
        httpx.Client(trust_env=False, timeout=10) as http,
    ):
        started = time.perf_counter()
        response = http.get(slow.url("/media/clip-720p.mp4"), headers={"Range": "bytes=0-99999"})
        elapsed = time.perf_counter() - started
    assert len(response.content) == 100_000
    assert 0.4 <= elapsed < 3


# ---------------------------------------------------------------------------------------------
# pages and the API
# ---------------------------------------------------------------------------------------------


def test_variants_json_lists_three_mp4_variants(client: httpx.Client) -> None:
    response = client.get("/api/posts/variants.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    post = response.json()["post"]
    assert post["id"] == "1001"
    assert post["author"] == {"handle": "sampleuser", "name": "Sample User"}
    (media,) = post["media"]
    assert media["type"] == "video"
    assert media["poster"] == "/media/poster.jpg"
    mp4 = [v for v in media["variants"] if v["content_type"] == "video/mp4"]
    assert [(v["url"], v["width"], v["height"]) for v in mp4] == [
        ("/media/clip-360p.mp4", 640, 360),
        ("/media/clip-720p.mp4", 1280, 720),
        ("/media/clip-1080p.mp4", 1920, 1080),
    ]
    assert [v["bitrate"] for v in mp4] == sorted(v["bitrate"] for v in mp4)
    (hls,) = [v for v in media["variants"] if v["content_type"] == "application/x-mpegURL"]
    assert client.get(hls["url"]).status_code == 404
    for variant in mp4:
        assert client.head(variant["url"]).status_code == 200


@pytest.mark.parametrize("post", SAMPLE_POSTS, ids=lambda p: p.path)
def test_every_post_answers_with_its_documented_status(client: httpx.Client, post: SamplePost) -> None:
    response = client.get(post.path)
    assert response.status_code == post.status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!doctype html>")
    assert "<body>" in response.text


def test_index_lists_the_posts(client: httpx.Client) -> None:
    page = client.get("/").text
    for post in SAMPLE_POSTS:
        assert f'href="{post.path}"' in page


def test_error_statuses(site: SampleSite, client: httpx.Client) -> None:
    assert client.get("/posts/missing").status_code == 404
    assert client.get("/posts/does-not-exist-42").status_code == 404
    assert client.get("/nowhere").status_code == 404
    assert client.get("/posts/gone").status_code == 410

    first, second, third = (client.get("/posts/flaky") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["retry-after"] == "1"
    assert meta_content(third.text, "og:video").endswith("/media/clip-720p.mp4")

    site.reset_flaky(1)
    assert [client.get("/posts/flaky").status_code for _ in range(2)] == [503, 200]


def test_page_urls_follow_the_host_header(site: SampleSite, client: httpx.Client) -> None:
    page = client.get("/posts/og-video").text
    assert meta_content(page, "og:video") == f"{site.base_url}/media/clip-720p.mp4"
    assert meta_content(page, "og:video:secure_url") == f"{site.base_url}/media/clip-720p.mp4"
    assert meta_content(page, "og:video:type") == "video/mp4"
    assert (meta_content(page, "og:video:width"), meta_content(page, "og:video:height")) == ("1280", "720")
    assert meta_content(page, "og:image") == f"{site.base_url}/media/poster.jpg"
    assert "<video" not in page

    other = client.get("/posts/og-video", headers={"Host": "localhost:9999"}).text
    assert meta_content(other, "og:video") == "http://localhost:9999/media/clip-720p.mp4"


def test_variants_page_meta(site: SampleSite, client: httpx.Client) -> None:
    page = client.get("/posts/variants").text
    assert meta_content(page, "og:image") == f"{site.base_url}/media/poster.jpg"
    assert meta_content(page, "author") == "Sample User"
    assert meta_content(page, "twitter:creator") == "@sampleuser"
    assert meta_content(page, "article:published_time") == "2024-05-01T18:30:00Z"
    assert "/api/posts/variants.json" in page
    assert "clip-1080p.mp4" not in page  # only the JSON reveals the best rendition


def test_jsonld_page(site: SampleSite, client: httpx.Client) -> None:
    page = client.get("/posts/jsonld").text
    match = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert match
    ld = json.loads(match.group(1))
    assert ld["@type"] == "VideoObject"
    assert ld["contentUrl"] == f"{site.base_url}/media/clip-1080p.mp4"
    assert ld["thumbnailUrl"] == f"{site.base_url}/media/poster.jpg"
    assert (ld["width"], ld["height"]) == (1920, 1080)
    assert ld["author"] == {"@type": "Person", "name": "Sample User", "alternateName": "@sampleuser"}
    assert meta_content(page, "twitter:player:stream") == f"{site.base_url}/media/clip-360p.mp4"


def test_video_tag_and_photo_pages(site: SampleSite, client: httpx.Client) -> None:
    video_page = client.get("/posts/video-tag").text
    assert '<video controls playsinline preload="none" poster="/media/poster.jpg"' in video_page
    sources = re.findall(r'<source src="([^"]+)" type="video/mp4" data-res="(\d+)"', video_page)
    assert sources == [("/media/clip-720p.mp4", "720"), ("/media/clip-360p.mp4", "360")]
    assert "og:video" not in video_page
    assert "og:image" not in video_page

    photo_page = client.get("/posts/photo").text
    assert meta_content(photo_page, "og:type") == "article"
    assert meta_content(photo_page, "og:image") == f"{site.base_url}/media/photo.jpg"
    assert "og:video" not in photo_page
    assert "<video" not in photo_page

    plain = client.get("/posts/no-media").text
    assert "/media/" not in plain
    assert "og:video" not in plain


def test_request_log_records_method_path_and_headers(site: SampleSite, client: httpx.Client) -> None:
    client.get("/media/clip-360p.mp4", headers={"Range": "bytes=0-1"})
    client.head("/posts/photo")
    log = site.requests
    assert [(method, path) for method, path, _ in log] == [("GET", "/media/clip-360p.mp4"), ("HEAD", "/posts/photo")]
    assert log[0][2]["Range"] == "bytes=0-1"
    assert site.paths_requested("HEAD") == ["/posts/photo"]
    site.clear_requests()
    assert site.requests == []


def test_module_entry_point_serves_until_interrupted(media_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mediavault_local.samples", "--port", "0", "--media-dir", str(media_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = ""
        for line in process.stdout:
            if line.startswith("Sample site on "):
                base_url = line.split()[3].rstrip("/")
                break
        assert base_url.startswith("http://127.0.0.1:")
        listed = [process.stdout.readline().split()[0] for _ in SAMPLE_POSTS]
        assert listed == [base_url + post.path for post in SAMPLE_POSTS]
        assert httpx.get(f"{base_url}/posts/photo", trust_env=False).status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# ---------------------------------------------------------------------------------------------
# a real browser
# ---------------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_chromium_plays_the_lowest_variant_after_fetching_the_json(site: SampleSite) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            json_urls: list[str] = []
            page.on("response", lambda r: json_urls.append(r.url) if r.url.endswith(".json") else None)
            page.goto(site.url("/posts/variants"))
            page.wait_for_function("document.body.dataset.playerReady === '1'", timeout=15_000)
            src = page.get_attribute("#player", "src")
            current = page.eval_on_selector("#player", "v => v.src")
            text = page.inner_text("#text")
        finally:
            browser.close()

    assert src is not None
    assert src.endswith("clip-360p.mp4")
    assert current == site.url("/media/clip-360p.mp4")
    assert text.startswith("Sunset over the harbour")
    assert json_urls == [site.url("/api/posts/variants.json")]
    assert "/api/posts/variants.json" in site.paths_requested("GET")

"""HLS playlists: master and media parsing, URI resolution, byte ranges, audio groups, the choice of
variant, and the refusal of what cannot be archived (encrypted, live)."""

from __future__ import annotations

import pytest

from mediavault.errors import InvalidMedia
from mediavault.media.hls import (
    ByteRange,
    InitSection,
    choose,
    is_master,
    parse_attributes,
    parse_master,
    parse_media,
)

pytestmark = pytest.mark.unit

BASE = "https://cdn.example/v/123/master.m3u8?token=abc"

MASTER = """#EXTM3U
#EXT-X-VERSION:4
#EXT-X-INDEPENDENT-SEGMENTS
# a comment, ignored
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud-lo",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/lo.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud-hi",NAME="Commentary",LANGUAGE="en",DEFAULT=NO,URI="audio/comm.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud-hi",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/hi.m3u8"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",URI="subs/en.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=700000,AVERAGE-BANDWIDTH=500000,RESOLUTION=640x360,FRAME-RATE=25.000,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aud-lo"
360p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2800000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud-hi",SUBTITLES="subs"
/abs/720p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1800000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="aud-hi"
https://other.example/720p-low.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2"
audio-only.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,RESOLUTION=1920x1080,URI="iframes.m3u8"
"""

MEDIA = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:4.0,
seg0.ts
#EXTINF:3.96,title text
../shared/seg1.ts
#EXT-X-DISCONTINUITY
#EXTINF:2.5,
https://other.example/seg2.ts
#EXT-X-ENDLIST
"""


def test_attribute_lists_keep_commas_inside_quotes() -> None:
    # Given an attribute list with a quoted CODECS list
    attributes = parse_attributes('BANDWIDTH=1000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1920x1080,NAME="a b"')
    # Then quotes are removed and the comma inside them is kept
    assert attributes == {
        "BANDWIDTH": "1000",
        "CODECS": "avc1.64001f,mp4a.40.2",
        "RESOLUTION": "1920x1080",
        "NAME": "a b",
    }


def test_malformed_attribute_list_is_refused() -> None:
    with pytest.raises(InvalidMedia, match="malformed"):
        parse_attributes("BANDWIDTH=1000,=oops")


def test_master_playlist_variants_and_renditions() -> None:
    # When a master playlist is parsed
    assert is_master(MASTER)
    assert not is_master(MEDIA)
    master = parse_master(MASTER, BASE)

    # Then every variant is read with its attributes, URIs resolved against the playlist URL
    low, high, high_low_rate, audio_only = master.variants
    assert low.uri == "https://cdn.example/v/123/360p/index.m3u8"
    assert (low.width, low.height, low.bandwidth, low.average_bandwidth) == (640, 360, 700_000, 500_000)
    assert low.codecs == ("avc1.4d401e", "mp4a.40.2")
    assert low.frame_rate == 25.0
    assert low.audio == "aud-lo"
    assert high.uri == "https://cdn.example/abs/720p.m3u8"
    assert high.average_bandwidth is None
    assert high.frame_rate is None
    assert high_low_rate.uri == "https://other.example/720p-low.m3u8"
    assert not audio_only.has_video
    assert low.has_video
    # I-frame playlists are not variants; renditions of every type are listed
    assert len(master.variants) == 4
    assert [r.type for r in master.renditions] == ["AUDIO", "AUDIO", "AUDIO", "SUBTITLES"]
    english_hi = master.audio_group("aud-hi")[1]
    assert english_hi.uri == "https://cdn.example/v/123/audio/hi.m3u8"
    assert english_hi.default
    assert english_hi.autoselect
    assert english_hi.language == "en"


def test_choice_is_highest_resolution_then_bandwidth_with_default_audio() -> None:
    # Given two 720p variants (2.8 and 1.8 Mb/s) and a 360p one listed first
    selection = choose(parse_master(MASTER, BASE))
    # Then the 720p at the higher bandwidth wins, with the DEFAULT audio of its group
    assert selection.variant.uri == "https://cdn.example/abs/720p.m3u8"
    assert selection.audio is not None
    assert selection.audio.name == "English"
    assert selection.audio.uri == "https://cdn.example/v/123/audio/hi.m3u8"


def test_resolution_beats_bandwidth() -> None:
    text = """#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=9000000,RESOLUTION=640x360
a.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1920x1080
b.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1920x1080
c.m3u8
"""
    selection = choose(parse_master(text, "https://cdn.example/m.m3u8"))
    # the first of two equal variants is kept
    assert selection.variant.uri == "https://cdn.example/b.m3u8"
    assert selection.audio is None


def test_audio_without_default_takes_first_with_uri() -> None:
    text = """#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Muxed"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Stereo",URI="stereo.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Surround",URI="surround.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=1280x720,AUDIO="a"
v.m3u8
"""
    selection = choose(parse_master(text, "https://cdn.example/m.m3u8"))
    assert selection.audio is not None
    assert selection.audio.name == "Stereo"


def test_default_audio_without_uri_means_muxed_audio() -> None:
    text = """#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Main",DEFAULT=YES
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="Other",URI="other.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=1280x720,CODECS="avc1.4d401f,mp4a.40.2",AUDIO="a"
v.m3u8
"""
    assert choose(parse_master(text, "https://cdn.example/m.m3u8")).audio is None
    # ...unless the variant's CODECS show it carries no audio: then a rendition with a URI is taken
    video_only = text.replace('CODECS="avc1.4d401f,mp4a.40.2"', 'CODECS="avc1.4d401f"')
    audio = choose(parse_master(video_only, "https://cdn.example/m.m3u8")).audio
    assert audio is not None
    assert audio.name == "Other"


def test_audio_only_master_and_unknown_group_are_refused() -> None:
    only_audio = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2"\na.m3u8\n'
    with pytest.raises(InvalidMedia, match="only audio"):
        choose(parse_master(only_audio, BASE))
    unknown = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000,RESOLUTION=640x360,AUDIO="nope"\na.m3u8\n'
    with pytest.raises(InvalidMedia, match="unlisted audio group"):
        choose(parse_master(unknown, BASE))


def test_media_playlist_segments_durations_and_relative_uris() -> None:
    playlist = parse_media(MEDIA, "https://cdn.example/v/123/720p/index.m3u8")
    assert [s.uri for s in playlist.segments] == [
        "https://cdn.example/v/123/720p/seg0.ts",
        "https://cdn.example/v/123/shared/seg1.ts",
        "https://other.example/seg2.ts",
    ]
    assert [s.duration for s in playlist.segments] == [4.0, 3.96, 2.5]
    assert [s.discontinuity for s in playlist.segments] == [False, False, True]
    assert playlist.duration == pytest.approx(10.46)
    assert playlist.target_duration == 4
    assert playlist.playlist_type == "VOD"


def test_byte_ranges_and_init_section() -> None:
    # Given an fMP4 playlist whose segments are ranges of one file, the second without an offset
    text = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MAP:URI="main.mp4",BYTERANGE="720@0"
#EXTINF:2.0,
#EXT-X-BYTERANGE:1000@720
main.mp4
#EXTINF:2.0,
#EXT-X-BYTERANGE:1500
main.mp4
#EXT-X-MAP:URI="other-init.mp4"
#EXTINF:1.0,
other.m4s
#EXT-X-ENDLIST
"""
    playlist = parse_media(text, "https://cdn.example/v/index.m3u8")
    first, second, third = playlist.segments
    # Then offsets continue from the previous range of the same resource
    assert first.byte_range == ByteRange(720, 1000)
    assert second.byte_range == ByteRange(1720, 1500)
    assert second.byte_range.header == "bytes=1720-3219"
    assert first.init == second.init == InitSection("https://cdn.example/v/main.mp4", ByteRange(0, 720))
    assert third.init == InitSection("https://cdn.example/v/other-init.mp4")
    assert third.byte_range is None


def test_byte_range_without_offset_must_follow_a_range() -> None:
    text = "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:100\na.ts\n#EXT-X-ENDLIST\n"
    with pytest.raises(InvalidMedia, match="without offset"):
        parse_media(text, BASE)


@pytest.mark.parametrize(
    "key",
    [
        '#EXT-X-KEY:METHOD=AES-128,URI="https://keys.example/k"',
        '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="k",KEYFORMAT="com.apple.streamingkeydelivery"',
    ],
)
def test_encrypted_media_playlist_is_refused(key: str) -> None:
    text = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n{key}\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n"
    with pytest.raises(InvalidMedia, match="encrypted"):
        parse_media(text, BASE)


def test_method_none_is_not_encryption() -> None:
    text = "#EXTM3U\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n"
    assert len(parse_media(text, BASE).segments) == 1


def test_encrypted_master_is_refused() -> None:
    text = '#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI="k"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n'
    with pytest.raises(InvalidMedia, match="encrypted"):
        parse_master(text, BASE)


def test_live_playlist_is_refused() -> None:
    live = MEDIA.replace("#EXT-X-ENDLIST\n", "").replace("#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-PLAYLIST-TYPE:EVENT")
    with pytest.raises(InvalidMedia, match="live"):
        parse_media(live, BASE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!doctype html><html><body>Not found</body></html>", "not an HLS playlist"),
        ("", "not an HLS playlist"),
        ("#EXTM3U\nseg.ts\n#EXT-X-ENDLIST\n", "no #EXTINF"),
        ("#EXTM3U\n#EXTINF:abc,\nseg.ts\n#EXT-X-ENDLIST\n", "bad HLS duration"),
        ("#EXTM3U\n#EXT-X-ENDLIST\n", "without segments"),
        ("#EXTM3U\n#EXTINF:2,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "not http"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n#EXTINF:2,\na.ts\n", "mixes"),
    ],
)
def test_malformed_media_playlists_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidMedia, match=message):
        parse_media(text, BASE)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=640x360\nv.m3u8\n", "BANDWIDTH"),
        ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=big\nv.m3u8\n", "RESOLUTION"),
        ("#EXTM3U\nv.m3u8\n", "does not follow"),
        ('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\njavascript:alert("x")\n', "not http"),
    ],
)
def test_malformed_master_playlists_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidMedia, match=message):
        parse_master(text, BASE)


def test_byte_order_mark_and_crlf_are_accepted() -> None:
    text = "\ufeff#EXTM3U\r\n#EXTINF:2.0,\r\na.ts\r\n#EXT-X-ENDLIST\r\n"
    assert parse_media(text, BASE).segments[0].uri == "https://cdn.example/v/123/a.ts"

"""Run folders shipped back from Ray tasks, without Ray: pack_folder never follows a link, and
unpack_folder writes nothing of a reply with a name that is not a plain relative path."""

import os

import pytest

from mnistlab.errors import MnistlabError
from mnistlab.raycluster import pack_folder, unpack_folder


@pytest.fixture()
def run_folder(tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (run / "summary.json").write_text('{"a": 1}')
    (run / "sub" / "model.pt").write_bytes(b"\x00\x01" * 1000)
    return run


def test_round_trip(run_folder, tmp_path):
    packed = pack_folder(run_folder)
    assert packed == {"summary.json": b'{"a": 1}', "sub/model.pt": b"\x00\x01" * 1000}
    unpack_folder(packed, tmp_path / "copy")
    assert pack_folder(tmp_path / "copy") == packed
    assert pack_folder(tmp_path / "missing") == {}


@pytest.mark.parametrize("link,target_is_dir", [
    ("passwd", False),  # a link to a file elsewhere
    ("sub/secret", False),  # ... deeper in the folder
    ("etc", True),  # a link to a folder elsewhere: not entered
    ("loop", True),  # a link back to the run folder itself
    ("dangling", False),  # a link to nothing
])
def test_pack_skips_symlinks_without_following_them(run_folder, tmp_path, link, target_is_dir):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "secret.txt").write_text("not yours")
    (outside / "deep" / "key").write_text("not yours either")
    target = {"passwd": outside / "secret.txt", "sub/secret": outside / "secret.txt",
              "etc": outside, "loop": run_folder, "dangling": tmp_path / "nothing"}[link]
    os.symlink(target, run_folder / link, target_is_directory=target_is_dir)
    packed = pack_folder(run_folder)
    assert set(packed) == {"summary.json", "sub/model.pt"}
    assert b"not yours" not in b"".join(packed.values())


@pytest.mark.parametrize("name,problem", [
    ("", "not a file name"),
    (".", "an empty or '.' part names no file"),
    ("a/.", "an empty or '.' part names no file"),
    ("a//b", "an empty or '.' part names no file"),
    ("a/", "an empty or '.' part names no file"),
    ("a/..", "a '..' part would climb outside the folder"),
    ("../evil.txt", "a '..' part would climb outside the folder"),
    ("a/../../evil.txt", "a '..' part would climb outside the folder"),
    ("/etc/passwd", "an absolute path"),
    ("C:\\evil.txt", "a backslash or a drive: a Windows path"),
    ("C:evil.txt", "a backslash or a drive: a Windows path"),
    ("a\\..\\evil.txt", "a backslash or a drive: a Windows path"),
    ("nul\x00byte", "it holds a NUL or control character"),
    ("line\nbreak", "it holds a NUL or control character"),
    (5, "not a file name"),
])
def test_unpack_refuses_a_bad_name_before_writing_anything(name, problem, tmp_path):
    folder = tmp_path / "study" / "run"
    packed = {"summary.json": b"{}", name: b"x", "z/model.pt": b"y"}
    with pytest.raises(MnistlabError) as info:
        unpack_folder(packed, folder)
    text = str(info.value)
    assert f"a file named {name!r}" in text and problem in text and "\n" not in text
    assert not folder.exists()  # nothing of the reply was written, not even the good files
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_unpack_refuses_a_file_named_like_a_folder_of_the_same_reply(tmp_path):
    with pytest.raises(MnistlabError, match="has the name of its folder"):
        unpack_folder({"a": b"1", "a/b": b"2"}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unpack_refuses_writing_through_a_link_out_of_the_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", folder / "sub", target_is_directory=True)
    with pytest.raises(MnistlabError, match="resolves outside the folder"):
        unpack_folder({"sub/x": b"1"}, folder)
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_unpack_refuses_content_that_is_not_bytes(tmp_path):
    with pytest.raises(MnistlabError, match="its content is not bytes"):
        unpack_folder({"a.txt": "text"}, tmp_path / "run")

"""Pairs for the Gatys runner: files as people write them (BOM, '+' in names), array tasks, collisions."""

import json
import shutil

from conftest import SAMPLES

from brushwork.gatys import gatys_run
from brushwork.schemas.gatys import GatysConfig

CONTENT, STYLE = SAMPLES / "gatys" / "content", SAMPLES / "gatys" / "style"


def test_a_csv_from_excel_with_a_bom_and_a_plus_in_a_style_name(tmp_path):
    shutil.copy(STYLE / "the_scream.jpg", tmp_path / "scream+v2.jpg")
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes("\ufeffcontent,style,name\n".encode() + (
        f"{CONTENT / 'tubingen.jpg'},{tmp_path / 'scream+v2.jpg'},one\n"
        f"{CONTENT / 'tubingen.jpg'},{STYLE / 'the_scream.jpg'}+{STYLE / 'shipwreck.jpg'},blend\n").encode())
    got, refused = gatys_run.read_pairs(GatysConfig(pairs=str(pairs)))
    assert not refused
    styles = {p.name: p.styles for p in got}
    assert styles["one"] == (str(tmp_path / "scream+v2.jpg"),)  # a file whose name holds a "+": one style
    assert len(styles["blend"]) == 2  # "a+b" of two files: a blend
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_bytes("\ufeff".encode() + json.dumps({"content": str(CONTENT / "tubingen.jpg"),
                                                      "style": str(STYLE / "the_scream.jpg")}).encode() + b"\n")
    assert len(gatys_run.read_pairs(GatysConfig(pairs=str(jsonl)))[0]) == 1


def test_each_pair_and_each_refusal_belongs_to_one_array_task(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    names = ["a", "../b", "c", "/d", "e"]
    pairs.write_text("".join(json.dumps({"content": str(CONTENT / "tubingen.jpg"), "style": str(STYLE / "shipwreck.jpg"),
                                         "name": n}) + "\n" for n in names))
    good, refused = gatys_run.read_pairs(GatysConfig(pairs=str(pairs)))
    assert [f.order for f in refused] == [1, 3]
    parts = [gatys_run.part_of(good, refused, part, 2) for part in (0, 1)]
    assert [p.name for p in parts[0][0]] == ["a", "c", "e"] and parts[0][1] == []
    assert parts[1][0] == [] and [f.name for f in parts[1][1]] == ["../b", "/d"]  # reported once, by task 1


def test_contents_that_differ_only_in_extension_get_distinct_pair_names(tmp_path):
    shutil.copy(CONTENT / "tubingen.jpg", tmp_path / "a.jpg")
    shutil.copy(CONTENT / "tubingen.jpg", tmp_path / "a.png")
    shutil.copy(CONTENT / "tubingen.jpg", tmp_path / "b.jpg")
    got, _ = gatys_run.read_pairs(GatysConfig(content=str(tmp_path), style=str(STYLE / "shipwreck.jpg")))
    assert sorted(p.name for p in got) == ["a.jpg__shipwreck", "a__shipwreck", "b__shipwreck"]


def test_a_render_of_other_input_files_is_a_change_even_with_fewer_styles(tmp_path):
    blend = gatys_run.Pair(str(CONTENT / "tubingen.jpg"), (str(STYLE / "the_scream.jpg"), str(STYLE / "shipwreck.jpg")),
                           "p", GatysConfig())
    png, meta = gatys_run.output_paths(tmp_path, blend)
    png.write_bytes(b"png")
    meta.write_text(json.dumps({"params": gatys_run.render_params(blend.cfg), "inputs": gatys_run.input_record(blend)}))
    assert gatys_run.changed_settings(tmp_path, [blend]) == []  # the same files: done
    single = gatys_run.Pair(blend.content, blend.styles[:1], "p", GatysConfig())  # one style dropped, same name
    [(_, why)] = gatys_run.changed_settings(tmp_path, [single])
    assert why.startswith("inputs ") and "shipwreck" in why  # the style list itself changed


def test_the_image_cache_returns_every_size_asked_even_past_its_budget():
    images = gatys_run.ImageCache(80_000_000, budget=1)
    got = images.get(str(CONTENT / "tubingen.jpg"), "fit", [(24, 32), (36, 48)])
    assert [tuple(t.shape[-2:]) for t in got] == [(24, 32), (36, 48)] and images.decodes == 1
    assert len(images.entries) == 1  # the budget still holds: only the newest entry stays

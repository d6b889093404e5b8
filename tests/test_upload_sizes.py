"""The fine-tuning upload's slider bounds follow the file's rows and the real splitter."""

from __future__ import annotations

import pytest

from bert_core import finetune as ft
from ui.upload_sizes import clamp, slider_steps, split_sizes

N_TRAIN = [100, 200, 500, 1000, 2000, 5000, 10000, 30000]  # the lab's slider steps
N_TEST = [100, 200, 300, 500, 1000]


def data(n: int, classes: int = 2) -> ft.LabelledData:
    return ft.LabelledData(tuple(f"text {i}" for i in range(n)), tuple(i % classes for i in range(n)),
                           tuple(f"c{k}" for k in range(classes)), "test file")


def test_a_60_row_file_offers_48_training_and_12_held_out_rows():
    s = split_sizes(60)
    assert (s.max_train, s.max_test, s.default_train, s.default_test) == (48, 12, 48, 12)
    assert slider_steps(N_TRAIN, s.max_train) == [48] and slider_steps(N_TEST, s.max_test) == [12]
    assert clamp(2000, [48]) == 48 and clamp(300, [12]) == 12


@pytest.mark.parametrize("n, classes", [(10, 2), (60, 2), (61, 3), (999, 4), (2500, 2), (40000, 5)])
def test_the_defaults_are_what_the_splitter_really_takes(n, classes):
    s = split_sizes(n, classes)
    sp = ft.split(data(n, classes), s.default_train, s.default_test)
    assert len(sp.test) == s.default_test and len(sp.train) == s.default_train
    assert s.default_train + s.default_test <= n and s.max_train + s.default_test <= n
    assert len(ft.split(data(n, classes), s.max_train, s.max_test).test) == s.max_test  # the top of the slider is real


def test_big_files_keep_the_usual_defaults_and_a_smaller_test_set_frees_training_rows():
    s = split_sizes(40000)
    assert (s.default_train, s.default_test, s.max_test) == (2000, 300, 1000)
    assert split_sizes(600, n_test=20).max_train == 580 and split_sizes(600).max_train == 480
    assert slider_steps(N_TRAIN, 580) == [100, 200, 500, 580]
    assert clamp(1000, [100, 200, 500, 580]) == 580 and clamp(50, [100, 200]) == 100

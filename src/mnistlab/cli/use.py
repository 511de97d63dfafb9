"""Using a trained model: `mnistlab predict` and `mnistlab export`."""

from __future__ import annotations

import argparse
import os
import shlex
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from .. import files, interrupt
from ..errors import MnistlabError
from .common import (
    RUN_DIR_HELP,
    as_output,
    check_run_usable,
    needed_path_text,
    path_text,
    stderr,
)

if TYPE_CHECKING:
    from ..predict import EncodedImage

PREDICT = ("Images are preprocessed the way MNIST was made: grayscale, light backgrounds "
           "inverted, cropped to the ink, fitted in 20x20 and centred by mass in 28x28. Exit 1 "
           "if any image could not be read.")


def add_predict(p: argparse.ArgumentParser) -> None:
    from ..predict import STYLES

    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, or folders of them (the image files directly in "
                   "each; subfolders are not searched); - reads one image file from standard "
                   "input (cat digit.png | mnistlab predict RUN_DIR -)")
    p.add_argument("--top", type=int, default=3, metavar="K",
                   help="classes shown per image (default: 3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--show", type=path_text, metavar="OUT.png",
                   help="save a sheet: each input beside what the model saw (the first "
                   "100 inputs)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --show file if it exists (refused otherwise)")
    p.add_argument("--style", choices=STYLES, default=None,
                   help="how an image is made to look like the training images: strokes "
                   "(digits: crop to the ink, fit it in 20x20, centre it by mass in 28x28, as "
                   "MNIST was made), objects (clothing: fit the object in 28x28, as "
                   "Fashion-MNIST was made), plain (resize the whole image, no cropping) "
                   "(default: the one for the run's dataset)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average the softmax over shifted (and, where trained so, mirrored) "
                   "copies of each image, the views the run's own scores used (default: as "
                   "the run was trained, its --tta)")


def run_predict(args: argparse.Namespace) -> int:
    from ..predict import SHEET_MAX, exit_code, format_predictions, predict, show_sheet
    from ..progress import counted

    if args.show:  # before the work: a file there (an input, say) is not drawn over
        files.check_output_file(args.show, "--show", suffix=".png", replace=args.overwrite)
    _in_order(args.run_dir, args.images)
    check_run_usable(args.run_dir)
    images = [_standard_input() if image == "-" else image for image in _once(args.images)]
    with counted("predict") as progress:  # a bar on a terminal: thousands take a while
        predictions = predict(args.run_dir, images, top=args.top, style=args.style,
                              tta=args.tta, progress=progress)
    print(as_output(format_predictions(predictions, as_json=args.json), args.json), flush=True)
    if interrupt.requested():  # what was scored is printed; the command says it stopped
        stderr.print("interrupted; the images scored before it are printed, the others are "
                     "marked 'not predicted'")
        return interrupt.exit_code()
    if args.show:
        drawn = ("" if len(predictions) <= SHEET_MAX
                 else f" (the first {SHEET_MAX} of {len(predictions)} inputs)")
        stderr.print(f"sheet: {escape(str(show_sheet(predictions, args.show)))}{drawn}")
    return exit_code(predictions)


def _in_order(run_dir: str, images: list[str]) -> None:
    """An image given first and the run after it: said as such (not "a file, not a run")."""
    if Path(run_dir).is_file():
        run = next((i for i in images if (Path(i) / "model.pt").is_file()), None)
        if run is not None:
            order = [run, run_dir, *(i for i in images if i != run)]
            raise MnistlabError(f"{run_dir}: an image where the run folder goes; the run comes "
                                f"first: mnistlab predict {shlex.join(order)}")


def _once(images: list[str]) -> list[str]:
    if images.count("-") > 1:
        raise MnistlabError("'-' (an image read from standard input) can be given once; name "
                            "a file that is called '-' as ./-")
    piped = [image for image in images if image == "-" or _a_pipe(image)]
    # `- /dev/stdin`: the second read found the pipe emptied, "a pipe with nothing in it" (hunt)
    if len(piped) > 1 and len(piped) > len({_pipe_identity(image) for image in piped}):
        raise MnistlabError(f"{' and '.join(piped)}: one pipe given twice, and a pipe can be "
                            "read once; give it once")
    return images


def _a_pipe(image: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(image).st_mode)
    except (OSError, ValueError):  # no such file (said later, in its own line), a bad name
        return False


def _pipe_identity(image: str) -> tuple[int, int]:
    """Which pipe: '-' is standard input, as /dev/stdin and /dev/fd/0 are."""
    try:
        found = os.fstat(0) if image == "-" else os.stat(image)
    except OSError:  # standard input closed: '-' is told so when it is read
        return -1, -1
    return found.st_dev, found.st_ino


def _standard_input() -> EncodedImage:
    from ..predict import EncodedImage, ImageProblem, read_piped

    if sys.stdin is None or sys.stdin.isatty():
        raise MnistlabError("IMAGE '-' reads an image file from standard input, and nothing is "
                            "piped in: cat digit.png | mnistlab predict RUN_DIR -")
    try:  # bounded: `cat /dev/zero |` filled memory
        data = read_piped(sys.stdin.buffer, "on standard input")
    except ImageProblem as problem:
        raise MnistlabError(f"IMAGE '-': {problem}, or give its name") from None
    return EncodedImage("-", data)


def add_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("--format", choices=("onnx",), default="onnx",
                   help="the file format: onnx, which onnxruntime and most serving tools read "
                   "(default: onnx)")
    p.add_argument("--out", type=needed_path_text, required=True, metavar="FILE",
                   help="e.g. model.onnx")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it exists (refused otherwise, so an ONNX file in use "
                   "is not lost)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="the graph averages the softmax over the test-time views the run's own "
                   "scores used, as predict does; --no-tta scores the image alone, N times "
                   "cheaper (default: as the run was trained, its --tta)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run_export(args: argparse.Namespace) -> int:
    from ..export import export_onnx

    check_run_usable(args.run_dir)
    r = export_onnx(args.run_dir, args.out, check=not args.no_check, tta=args.tta,
                    overwrite=args.overwrite)
    checked = ("not checked (--no-check)" if r["max_abs_diff"] is None
               else f"max |logit diff| {r['max_abs_diff']:.2e}")
    print(files.json_text(r, indent=2, default=str) if args.json else
          f"{r['path']}  opset {r['opset']}  {checked}  sidecar {r['sidecar']}")
    return 0

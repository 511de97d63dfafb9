"""The training doctor: pure functions from numbers a run already has to named findings.

Each finding has a stable `code`, a severity (`problem` > `warning` > `info`), the evidence
(the numbers that triggered it), an explanation and a fix, in English and Spanish. The checks
run before training (`preflight`), after the first steps (`early_check`), at the end of each
epoch and of the run (`diagnose`), and on a finished run or study folder (`doctor_path`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .data.tensors import to_input  # the exact transform training uses
from .errors import MnistlabError

SEVERITY_ORDER = {"problem": 0, "warning": 1, "info": 2}
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
FASHION_TRAIN_COUNTS = (6000,) * 10


def chance_bce(k: int) -> float:
    """Binary cross-entropy per output when every output predicts the class prior 1/K."""
    p = 1.0 / k
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def softmax_twice_floor(k: int) -> float:
    """Lowest cross-entropy reachable when probabilities are fed in as logits: ln(1+(K-1)/e)."""
    return math.log(1 + (k - 1) / math.e)


# code -> rank (order among findings of equal severity), then en/es texts. Evidence templates
# are formatted with the numbers each check passes.
CATALOGUE: dict[str, dict[str, Any]] = {
    "binary-accuracy-illusion": {"rank": 0, "en": (
        "Binary-accuracy illusion",
        "reported accuracy {metric:.4f} ≈ 1 − 1/K = {expected:.4f} with loss {loss:.4f} ≈ "
        "{bce:.4f}, the binary cross-entropy of predicting 1/K everywhere; true (categorical) "
        "accuracy {true_acc:.4f}",
        "The network outputs the class prior 1/K for every class: it has learned nothing. The "
        "metric counts each of the K outputs as a separate yes/no answer, so answering 'no' to "
        "all of them already scores (K−1)/K — the 0.9000 is an artefact of the metric.",
        "Use softmax cross-entropy (--loss ce) and categorical accuracy (--metric accuracy); "
        "then find why nothing is learned (labels out of step with the images, input pipeline)."),
        "es": (
        "Ilusión de la exactitud binaria",
        "exactitud reportada {metric:.4f} ≈ 1 − 1/K = {expected:.4f} con pérdida {loss:.4f} ≈ "
        "{bce:.4f}, la entropía cruzada binaria de predecir 1/K en todas las salidas; exactitud "
        "real (categórica) {true_acc:.4f}",
        "La red devuelve la probabilidad a priori 1/K para cada clase: no ha aprendido nada. La "
        "métrica cuenta cada una de las K salidas como una respuesta sí/no aparte, así que "
        "responder 'no' a todas ya da (K−1)/K: el 0.9000 es un artefacto de la métrica.",
        "Usa entropía cruzada softmax (--loss ce) y exactitud categórica (--metric accuracy); "
        "luego busca por qué no aprende (etiquetas desalineadas con las imágenes, la entrada).")},
    "diverged": {"rank": 1, "en": (
        "Training diverged",
        "{detail}",
        "The loss became NaN/inf or grew without bound: the steps are too large for this "
        "optimizer, so each update overshoots and the weights blow up.",
        "Lower the learning rate (by 10x to start: e.g. SGD 0.01-0.1, Adam 0.001), or add a "
        "warm-up/one-cycle schedule; check the input is normalised."),
        "es": (
        "El entrenamiento divergió",
        "{detail}",
        "La pérdida se volvió NaN/inf o creció sin límite: los pasos son demasiado grandes para "
        "este optimizador, cada actualización se pasa de largo y los pesos explotan.",
        "Baja la tasa de aprendizaje (10 veces para empezar: SGD 0.01-0.1, Adam 0.001) o usa "
        "un calentamiento/one-cycle; comprueba que la entrada esté normalizada.")},
    "unnormalised-input": {"rank": 2, "en": (
        "Unnormalised input",
        "the model sees pixel values from {lo:.1f} to {hi:.1f}",
        "Pixels in 0..255 make the first layer's outputs hundreds of times larger than its "
        "initialisation assumes: activations saturate and gradients are badly scaled.",
        "Divide by 255 and standardise with the dataset's mean and sd (--input-scaling "
        "standardize, the default)."),
        "es": (
        "Entrada sin normalizar",
        "el modelo ve píxeles entre {lo:.1f} y {hi:.1f}",
        "Con píxeles en 0..255 las salidas de la primera capa son cientos de veces mayores de lo "
        "que supone su inicialización: las activaciones se saturan y los gradientes se desescalan.",
        "Divide por 255 y estandariza con la media y la desviación del conjunto "
        "(--input-scaling standardize, el valor por defecto).")},
    "labels-out-of-range": {"rank": 3, "en": (
        "Labels beyond the outputs",
        "largest label {max_label} but the model has {k} outputs",
        "A label the network has no output for can never be predicted.",
        "Give the model as many outputs as classes, or fix the label file."),
        "es": (
        "Etiquetas fuera de rango",
        "etiqueta máxima {max_label} pero el modelo tiene {k} salidas",
        "Una etiqueta sin salida correspondiente nunca puede predecirse.",
        "Da al modelo tantas salidas como clases, o corrige el archivo de etiquetas.")},
    "softmax-twice": {"rank": 4, "en": (
        "Softmax applied twice",
        "training loss stays at {loss:.4f}, near the floor ln(1+(K−1)/e) = {floor:.4f} that "
        "cross-entropy on probabilities cannot go below, while accuracy is {acc:.4f}",
        "Probabilities (already softmaxed) are fed to a loss that applies softmax again: the "
        "loss can never fall below that floor and its gradients shrink as the model improves.",
        "Return raw logits from the model and use cross-entropy on them (--loss ce)."),
        "es": (
        "Softmax aplicado dos veces",
        "la pérdida de entrenamiento se queda en {loss:.4f}, cerca del suelo ln(1+(K−1)/e) = "
        "{floor:.4f} que la entropía cruzada sobre probabilidades no puede cruzar, con exactitud "
        "{acc:.4f}",
        "Se pasan probabilidades (ya con softmax) a una pérdida que vuelve a aplicar softmax: la "
        "pérdida no baja de ese suelo y sus gradientes se encogen a medida que el modelo mejora.",
        "Devuelve logits sin softmax y usa entropía cruzada sobre ellos (--loss ce).")},
    "not-learning": {"rank": 5, "en": (
        "Not learning",
        "after epoch {epoch} the loss is {loss:.4f} ≈ ln K = {lnk:.4f} and accuracy {acc:.4f} "
        "≈ chance ({chance:.4f})",
        "The outputs are still uniform guesses: the gradient is not reaching the weights in a "
        "useful way (learning rate far too low or high, dead units, a broken input pipeline).",
        "Try Adam at lr 0.001 with standardised input; check a batch of images against its "
        "labels; check the loss is cross-entropy on logits."),
        "es": (
        "No aprende",
        "tras la época {epoch} la pérdida es {loss:.4f} ≈ ln K = {lnk:.4f} y la exactitud "
        "{acc:.4f} ≈ azar ({chance:.4f})",
        "Las salidas siguen siendo conjeturas uniformes: el gradiente no llega a los pesos de "
        "forma útil (tasa de aprendizaje muy baja o muy alta, unidades muertas, entrada rota).",
        "Prueba Adam con lr 0.001 y entrada estandarizada; compara un lote de imágenes con sus "
        "etiquetas; usa entropía cruzada sobre logits.")},
    "no-signal": {"rank": 6, "en": (
        "No signal in the labels",
        "after {epochs} epochs the train accuracy (eval mode) is {acc:.4f}, chance is "
        "{chance:.4f}",
        "Even on the images it trains on, the model does no better than chance: the labels "
        "carry no information about the images (shuffled or misaligned labels, images and "
        "labels augmented or shuffled separately).",
        "Show a few images with their labels and check they agree; shuffle images and labels "
        "with the same permutation."),
        "es": (
        "Las etiquetas no dan señal",
        "tras {epochs} épocas la exactitud de entrenamiento (modo evaluación) es {acc:.4f}, el "
        "azar es {chance:.4f}",
        "Ni siquiera en sus propias imágenes de entrenamiento supera el azar: las etiquetas no "
        "dicen nada de las imágenes (etiquetas barajadas o desalineadas, imágenes y etiquetas "
        "aumentadas o barajadas por separado).",
        "Muestra algunas imágenes con su etiqueta y comprueba que coinciden; baraja imágenes y "
        "etiquetas con la misma permutación.")},
    "collapse": {"rank": 7, "en": (
        "Predictions collapsed onto one class",
        "{share:.1%} of validation predictions are class {cls!r}",
        "The model answers (almost) the same class for every image: it found the constant that "
        "minimises the loss instead of features.",
        "Look for a learning rate that is too high, dead ReLUs, or a label file dominated by one "
        "class; lower the lr and check the class balance."),
        "es": (
        "Predicciones colapsadas en una clase",
        "el {share:.1%} de las predicciones de validación son la clase {cls!r}",
        "El modelo responde (casi) la misma clase para toda imagen: encontró la constante que "
        "minimiza la pérdida en lugar de aprender rasgos.",
        "Busca una tasa de aprendizaje demasiado alta, ReLU muertas o etiquetas dominadas por "
        "una clase; baja la lr y revisa el equilibrio de clases.")},
    "wrong-dataset": {"rank": 8, "en": (
        "Wrong dataset",
        "{detail}",
        "MNIST and Fashion-MNIST share file names, sizes and format, so they are easily swapped.",
        "Point --dataset at the dataset you mean (mnist or fashion-mnist) and re-fetch it."),
        "es": (
        "Conjunto de datos equivocado",
        "{detail}",
        "MNIST y Fashion-MNIST comparten nombres de archivo, tamaño y formato: se confunden "
        "con facilidad.",
        "Indica en --dataset el conjunto que quieres (mnist o fashion-mnist) y descárgalo de "
        "nuevo.")},
    "too-slow": {"rank": 9, "en": (
        "Learning too slowly",
        "the loss fell only {drop:.1%} over the first epoch ({first:.4f} → {last:.4f}) with "
        "{optimizer} at lr {lr:g}",
        "The steps are too small for this optimizer: the model is still near its starting "
        "point after a full pass over the data.",
        "Raise the learning rate (plain SGD: 0.01-0.1, or add momentum 0.9; Adam: ~0.001), or "
        "switch to Adam."),
        "es": (
        "Aprende demasiado despacio",
        "la pérdida bajó solo un {drop:.1%} en la primera época ({first:.4f} → {last:.4f}) con "
        "{optimizer} y lr {lr:g}",
        "Los pasos son demasiado pequeños para este optimizador: tras una pasada completa por "
        "los datos el modelo sigue cerca del punto de partida.",
        "Sube la tasa de aprendizaje (SGD simple: 0.01-0.1, o momentum 0.9; Adam: ~0.001), o "
        "cambia a Adam.")},
    "overfitting": {"rank": 10, "en": (
        "Overfitting",
        "train accuracy (eval mode) {train:.4f} vs validation {val:.4f} (gap {gap:.4f}); "
        "validation loss rose from {best_loss:.4f} (epoch {best_epoch}) to {last_loss:.4f}",
        "The model keeps fitting the training images better while it gets worse on new ones.",
        "Stop earlier (--early-stopping 3), add dropout or weight decay, or augment the data."),
        "es": (
        "Sobreajuste",
        "exactitud de entrenamiento (modo evaluación) {train:.4f} frente a validación "
        "{val:.4f} (brecha {gap:.4f}); la pérdida de validación subió de {best_loss:.4f} "
        "(época {best_epoch}) a {last_loss:.4f}",
        "El modelo ajusta cada vez mejor las imágenes de entrenamiento mientras empeora en las "
        "nuevas.",
        "Para antes (--early-stopping 3), añade dropout o weight decay, o aumenta los datos.")},
    "loss-metric-mismatch": {"rank": 11, "en": (
        "Loss or metric unfit for one-label classification",
        "loss {loss_name}, metric {metric_name}",
        "Binary cross-entropy on a softmax output treats the K classes as K independent yes/no "
        "questions, and per-output binary accuracy rewards answering 'no' everywhere.",
        "Use --loss ce with --metric accuracy (these options exist to reproduce the mistake)."),
        "es": (
        "Pérdida o métrica inadecuadas para clasificación de una etiqueta",
        "pérdida {loss_name}, métrica {metric_name}",
        "La entropía cruzada binaria sobre una salida softmax trata las K clases como K "
        "preguntas sí/no independientes, y la exactitud binaria por salida premia responder "
        "'no' en todas.",
        "Usa --loss ce con --metric accuracy (estas opciones existen para reproducir el "
        "error).")},
    "lr-out-of-range": {"rank": 12, "en": (
        "Learning rate far outside the usual range",
        "{optimizer} at lr {lr:g}; usual range {lo:g}-{hi:g}",
        "Far below the range the model barely moves; far above it diverges.",
        "Start inside the usual range and tune from there."),
        "es": (
        "Tasa de aprendizaje muy fuera del rango habitual",
        "{optimizer} con lr {lr:g}; rango habitual {lo:g}-{hi:g}",
        "Muy por debajo del rango el modelo apenas se mueve; muy por encima diverge.",
        "Empieza dentro del rango habitual y ajusta desde ahí.")},
    "val-above-train": {"rank": 13, "en": (
        "Validation above training, explained",
        "running train accuracy {running:.4f} < validation {val:.4f}, but train accuracy in "
        "eval mode is {train_eval:.4f}",
        "The running figure is averaged over the epoch while dropout/augmentation are on and the "
        "weights are still changing; measured the same way as validation, training is not "
        "below it. This is not 'good generalisation'.",
        "Compare validation with the eval-mode train accuracy (train_acc_eval)."),
        "es": (
        "Validación por encima de entrenamiento, explicado",
        "exactitud de entrenamiento en marcha {running:.4f} < validación {val:.4f}, pero en "
        "modo evaluación es {train_eval:.4f}",
        "La cifra en marcha se promedia durante la época con dropout/aumento activos y con los "
        "pesos cambiando; medida igual que la validación, el entrenamiento no queda por debajo. "
        "No es 'buena generalización'.",
        "Compara la validación con la exactitud de entrenamiento en modo evaluación "
        "(train_acc_eval).")},
    "damaged-run": {"rank": 14, "en": (
        "Run folder cannot be read",
        "{detail}",
        "A file the doctor reads back is not what mnistlab writes: cut short by a crash or a "
        "full disk, or edited by hand. This run was left out of the examination.",
        "Re-run the training that made this folder, or delete the folder."),
        "es": (
        "Carpeta de ejecución ilegible",
        "{detail}",
        "Un archivo que el doctor vuelve a leer no es lo que escribe mnistlab: quedó cortado "
        "por una caída o un disco lleno, o se editó a mano. Esta ejecución quedó fuera del "
        "examen.",
        "Vuelve a ejecutar el entrenamiento que creó esta carpeta, o bórrala.")},
}

LR_RANGES = {"sgd": (1e-3, 1.0), "adam": (1e-5, 1e-2), "adamw": (1e-5, 1e-2)}


def slow_lr(config: TrainConfig) -> float:
    """At or below this learning rate a stalled first epoch is blamed on the step size."""
    if config.optimizer == "sgd":  # plain SGD at 0.001 is slow but still learns in a few epochs
        return 5e-4 if config.momentum == 0 else 5e-5
    return 5e-6


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    values: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str = "en") -> dict[str, str]:
        entry = CATALOGUE[self.code]
        title, evidence, explanation, fix = entry.get(lang, entry["en"])
        return {"title": title, "evidence": evidence.format(**self.values),
                "explanation": explanation, "fix": fix}

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, **self.text(lang),
                "values": self.values}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(data["code"], data["severity"], dict(data.get("values", {})))


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], CATALOGUE[f.code]["rank"]))


def merge(old: list[Finding], new: list[Finding]) -> list[Finding]:
    """Union by code; a later finding with the same code replaces the earlier (fresher numbers)."""
    by_code = {f.code: f for f in old}
    by_code.update({f.code: f for f in new})
    return sort_findings(list(by_code.values()))


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "problem"]


# --- before training ------------------------------------------------------------------------
def preflight(config: TrainConfig, splits: Any) -> list[Finding]:
    """Input range, labels vs outputs, loss/metric fit, learning-rate range, dataset identity."""

    findings: list[Finding] = []
    k = splits.num_classes
    sample = to_input(splits.train_x[:512], config, splits.mean, splits.std)
    lo, hi = float(sample.min()), float(sample.max())
    if hi > 20:
        findings.append(Finding("unnormalised-input", "problem", {"lo": lo, "hi": hi}))
    max_label = int(splits.train_y.max()) if len(splits.train_y) else 0
    if max_label >= k:
        findings.append(Finding("labels-out-of-range", "problem", {"max_label": max_label, "k": k}))
    if config.loss != "ce" or config.metric != "accuracy":
        findings.append(Finding("loss-metric-mismatch", "warning",
                                {"loss_name": config.loss, "metric_name": config.metric}))
    lo_lr, hi_lr = LR_RANGES[config.optimizer]
    if not (lo_lr / 10 <= config.lr <= hi_lr * 10):
        findings.append(Finding("lr-out-of-range", "warning", {
            "optimizer": config.optimizer, "lr": config.lr, "lo": lo_lr, "hi": hi_lr}))
    identity = dataset_identity(splits.dataset_name, _counts(splits))
    if identity:
        findings.append(Finding("wrong-dataset", "problem", {"detail": identity}))
    return sort_findings(findings)


def _counts(splits: Any) -> list[int]:
    import torch

    # the training labels before the validation split were stratified, so the proportions of
    # train+val match the file's; scale back up to compare with the published counts
    labels = torch.cat([splits.train_y.cpu(), splits.val_y.cpu()])
    return torch.bincount(labels, minlength=splits.num_classes).tolist()


def dataset_identity(name: str, counts: list[int]) -> str:
    """Say so when the class histogram is the other dataset's (60,000-image training sets)."""
    if len(counts) != 10 or sum(counts) != 60000:
        return ""
    if name == "mnist" and tuple(counts) == FASHION_TRAIN_COUNTS:
        return ("asked for MNIST, but the class histogram is exactly 6000 per class: "
                "these are Fashion-MNIST labels")
    if name == "fashion-mnist" and tuple(counts) == MNIST_TRAIN_COUNTS:
        return "asked for Fashion-MNIST, but the class histogram is MNIST's (5923, 6742, ...)"
    return ""


# --- during training ------------------------------------------------------------------------
def early_check(losses: list[float], k: int, config: TrainConfig) -> list[Finding]:
    """After the first steps: a loss that is already non-finite or climbing."""
    finite = [v for v in losses if math.isfinite(v)]
    if len(finite) < len(losses):
        return [Finding("diverged", "problem", {
            "detail": f"loss became NaN/inf within the first {len(losses)} steps"})]
    if len(finite) >= 20:
        head = sum(finite[:5]) / 5
        tail = sum(finite[-5:]) / 5
        if tail > 3 * head and tail > 3 * math.log(k):
            return [Finding("diverged", "problem", {
                "detail": f"loss rose from {head:.3g} to {tail:.3g} over the first "
                          f"{len(finite)} steps"})]
    return []


EXPLOSION = 100.0  # a loss this many times the first step's loss has blown up


def diverging(value: float, first: float, trace: list[list[float]], k: int) -> bool:
    """The check training runs at each sampled step."""
    return (not math.isfinite(value) or value > EXPLOSION * max(first, 1.0)
            or bool(rising_loss(trace, k)))


def rising_loss(trace: list[list[float]], k: int) -> str:
    """A loss far above ln K for the last several trace points: divergence without NaN."""
    values = [v for _, v in trace[-8:]]
    if len(values) == 8 and min(values) > 10 * math.log(k) and values[-1] >= values[0]:
        return (f"loss stayed above {10 * math.log(k):.1f} (10 × ln K) and kept rising, "
                f"{values[0]:.3g} → {values[-1]:.3g}")
    return ""


# --- after training -------------------------------------------------------------------------
def diagnose(config: TrainConfig, history: list[dict[str, float]], summary: dict[str, Any], *,
             early_losses: list[float] | None = None) -> list[Finding]:
    """All end-of-run signatures, most important first."""
    k = len(summary.get("class_names") or []) or 10
    findings: list[Finding] = []
    chance = 1.0 / k
    label_counts = summary.get("val_label_counts") or []
    if label_counts and sum(label_counts):
        chance = max(chance, max(label_counts) / sum(label_counts))
    lnk = math.log(k)

    if summary.get("status") == "diverged":
        trace = summary.get("loss_trace") or [[0, math.nan]]
        step, value = trace[-1]
        first = trace[0][1]
        if not math.isfinite(value):
            detail = f"the loss became {value} at step {int(step)}"
        elif value > EXPLOSION * max(first, 1.0):
            detail = (f"the loss exploded from {first:.4g} to {value:.4g} by step {int(step)}")
        else:
            detail = rising_loss(trace, k) or f"the loss stopped being finite at step {int(step)}"
        findings.append(Finding("diverged", "problem",
                                {"detail": f"{detail}; the run was stopped"}))
        return sort_findings(findings)
    if not history:
        return findings
    last = history[-1]
    val_metric = summary.get("val_metric")
    val_acc = summary.get("val_accuracy")
    val_loss = summary.get("val_loss")

    # 1. binary-accuracy illusion: metric ~ 1-1/K, BCE loss ~ that of predicting 1/K
    if config.metric == "binary-accuracy" and val_metric is not None and val_loss is not None:
        expected, bce = 1 - 1 / k, chance_bce(k)
        loss_now = last["train_loss"]
        if abs(val_metric - expected) <= 0.01 and (
                abs(loss_now - bce) <= 0.03 or abs(val_loss - bce) <= 0.03):
            findings.append(Finding("binary-accuracy-illusion", "problem", {
                "metric": val_metric, "expected": expected, "loss": loss_now, "bce": bce,
                "true_acc": val_acc if val_acc is not None else float("nan")}))

    preds = summary.get("val_pred_counts") or []
    top = max(range(len(preds)), key=lambda i: preds[i]) if preds and sum(preds) else None
    top_share = preds[top] / sum(preds) if top is not None else 0.0

    # 6. too slow: the first epoch barely moved the loss, with a learning rate at the low end
    drop = first_epoch_drop(summary.get("loss_trace") or [], _steps_in_first_epoch(summary,
                                                                                   config))
    too_slow = (drop is not None and drop[0] < 0.05 and drop[1] > 0.5 * lnk
                and config.lr <= slow_lr(config) * 1.0001)
    if too_slow and drop is not None:
        findings.append(Finding("too-slow", "problem", {
            "drop": drop[0], "first": drop[1], "last": drop[2], "optimizer": config.optimizer,
            "lr": config.lr}))

    # 2. not learning: loss ~ ln K and accuracy ~ chance after the first epoch, and the
    # training loss has not gone below ln K (the loss of predicting the prior): a model fed
    # labels without signal does go below it, by memorising its training images
    memorising = min(last["train_loss"], last.get("train_loss_eval", math.inf)) < 0.997 * lnk
    flat = not memorising
    if config.loss != "bce" and not too_slow:
        first = history[0]
        stuck = (abs(first["train_loss"] - lnk) <= 0.05 * lnk and first["val_acc"] <= chance + 0.03
                 and last["val_acc"] <= chance + 0.03)
        if stuck and (flat or len(history) < 3):
            findings.append(Finding("not-learning", "problem", {
                "epoch": int(last["epoch"]), "loss": last["train_loss"], "lnk": lnk,
                "acc": last["val_acc"], "chance": chance}))

    # 3. collapse: 90%+ of predictions in one class that is not 90% of the labels
    if top is not None:
        label_share = (label_counts[top] / sum(label_counts)) if sum(label_counts or [0]) else 0
        if top_share >= 0.9 and label_share < 0.5:
            names = summary.get("class_names") or [str(i) for i in range(k)]
            findings.append(Finding("collapse", "problem", {"share": top_share,
                                                            "cls": names[top]}))

    # 4. softmax twice: the loss floor ln(1+(K-1)/e) with accuracy well above chance
    floor = softmax_twice_floor(k)
    best_train_loss = min(r["train_loss"] for r in history)
    # (cross-entropy on logits at 80% accuracy is far below the floor, so a loss parked near
    # it with high accuracy is the signature; a slow run merely passing through it is not)
    if (floor - 0.02 <= best_train_loss <= floor + 0.12 and last["train_acc_eval"] >= 0.8
            and last["train_acc_eval"] > chance + 0.2):
        findings.append(Finding("softmax-twice", "problem", {
            "loss": best_train_loss, "floor": floor, "acc": last["train_acc_eval"]}))

    # 5. rising loss without NaN (the run may have completed anyway)
    rising = rising_loss(summary.get("loss_trace", []), k)
    if rising:
        findings.append(Finding("diverged", "problem", {"detail": rising}))

    # 8. overfitting: eval-mode train accuracy well above validation and val loss rising
    if len(history) >= 3:
        best_idx = min(range(len(history)), key=lambda i: history[i]["val_loss"])
        best_rec = history[best_idx]
        gap = last["train_acc_eval"] - last["val_acc"]
        if (gap > 0.03 and best_idx <= len(history) - 3
                and last["val_loss"] > best_rec["val_loss"] * 1.10):
            findings.append(Finding("overfitting", "warning", {
                "train": last["train_acc_eval"], "val": last["val_acc"], "gap": gap,
                "best_loss": best_rec["val_loss"], "best_epoch": int(best_rec["epoch"]),
                "last_loss": last["val_loss"]}))

    # 9. validation above (running) training, explained
    if (last["train_acc_running"] < last["val_acc"] - 0.005
            and last["train_acc_eval"] >= last["val_acc"] - 0.01):
        findings.append(Finding("val-above-train", "info", {
            "running": last["train_acc_running"], "val": last["val_acc"],
            "train_eval": last["train_acc_eval"]}))

    # 11. no signal: after several epochs even the training images are at chance while the
    # loss still moves (memorising noise); a loss that does not move at all is not-learning
    if (len(history) >= 3 and last["train_acc_eval"] <= 1 / k + 0.05
            and not _any(findings, "not-learning", "too-slow")):
        findings.append(Finding("no-signal", "problem", {
            "epochs": len(history), "acc": last["train_acc_eval"], "chance": 1 / k}))
    return sort_findings(findings)


def first_epoch_drop(trace: list[list[float]],
                     steps_per_epoch: int) -> tuple[float, float, float] | None:
    """(relative drop, start, end) of the loss over the first epoch, from the loss trace."""
    values = [v for s, v in trace if s <= steps_per_epoch and math.isfinite(v)]
    if len(values) < 6:
        return None
    start, end = sum(values[:3]) / 3, sum(values[-3:]) / 3
    return ((start - end) / start if start > 0 else 0.0), start, end


def _any(findings: list[Finding], *codes: str) -> bool:
    return any(f.code in codes for f in findings)


def _steps_in_first_epoch(summary: dict[str, Any], config: TrainConfig) -> int:
    n = summary.get("train_size") or 0
    return max(1, math.ceil(n / config.batch_size)) if n else 0


# --- on folders -----------------------------------------------------------------------------
def doctor_path(path: str | Path) -> dict[str, list[Finding]]:
    """Re-examine a run folder, or every run folder under a study folder.

    A damaged run folder given alone is a one-line error. Under a study folder, a damaged
    run becomes a `damaged-run` finding (a problem) beside the others' findings: the good
    runs are still examined, and the damaged one is named with what to do."""
    root = Path(path)
    if not root.exists():
        raise MnistlabError(f"{path}: no such folder")
    if (root / "summary.json").is_file():
        return {str(root): examine_run(root)}
    run_dirs = sorted(p.parent for p in root.rglob("summary.json"))
    if not run_dirs:
        raise MnistlabError(f"{path}: no run folders here (looked for summary.json)")
    out: dict[str, list[Finding]] = {}
    for run_dir in run_dirs:
        try:
            out[str(run_dir)] = examine_run(run_dir)
        except MnistlabError as exc:
            out[str(run_dir)] = [Finding("damaged-run", "problem", {"detail": str(exc)})]
    return out


def examine_run(run_dir: Path) -> list[Finding]:
    """The findings of one run folder: its stored diagnoses merged with a fresh diagnosis.
    Raises MnistlabError naming the file when one cannot be read back."""
    from . import runs
    from .config import load_config

    summary = runs.load_summary(run_dir)
    config_path = run_dir / "config.toml"
    try:
        config = load_config(config_path)
    except MnistlabError as exc:
        problem = str(exc).removeprefix(f"{config_path}: ")
        raise runs.damaged(config_path, problem.split("; ")[0]) from None
    history = runs.load_history(run_dir)
    stored = []
    for i, data in enumerate(summary.get("diagnoses", []), start=1):
        code = data.get("code")
        if isinstance(code, str) and code not in CATALOGUE:
            continue  # a finding of another mnistlab version: the fresh diagnosis stands
        finding = Finding(code, data.get("severity"), data.get("values"))
        try:
            SEVERITY_ORDER[finding.severity]
            finding.text("en"), finding.text("es")
        except (KeyError, ValueError, TypeError, IndexError, AttributeError):
            raise runs.damaged(run_dir / "summary.json",
                               f"diagnosis {i} ({str(code)[:40]}) cannot be read") from None
        stored.append(finding)
    return merge(stored, diagnose(config, history, summary))

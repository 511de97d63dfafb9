"""The message catalogue: every word mnistlab shows a reader, in English and Spanish.

The words live in `messages.toml` (shipped with the package), one table per message with `en`
and `es` side by side, so a translation is never more than a line away from its original.
`t(lang, key, **values)` formats one message; numbers in its placeholders are written the
language's way (Spanish: 10.000 and 89,16), as is any number formatted with `number()`. A count
takes its noun in the right number with `{n:seed|seeds}` ("1 seed", "3 seeds").
"""

from __future__ import annotations

import string
import sys
from functools import cache
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

LANGS = ("en", "es")
# decimal point and thousands separator per language
_SEPARATORS = {"en": (".", ","), "es": (",", ".")}


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """key -> {lang: template}, read once from messages.toml."""
    text = resources.files("mnistlab").joinpath("messages.toml").read_text("utf-8")
    return tomllib.loads(text)


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        from .errors import MnistlabError

        raise MnistlabError(f"lang: unknown language {lang!r}; choose one of {', '.join(LANGS)}")
    return lang


def localise(formatted: str, lang: str) -> str:
    """A number formatted the English way ("10,000.5") written the `lang` way."""
    point, thousands = _SEPARATORS[lang]
    if (point, thousands) == (".", ","):
        return formatted
    return formatted.translate(str.maketrans({".": point, ",": thousands}))


def after_colon(text: str, lang: str) -> str:
    """A sentence of the catalogue's (a finding's fix) set after a label and a colon: Spanish
    goes on in lower case there ("Solución: usa ...", not "Solución: Usa ..."); English, as
    written ("Fix: Use ...")."""
    return text[:1].lower() + text[1:] if lang == "es" else text


def number(value: float, spec: str, lang: str) -> str:
    """`format(value, spec)` with `lang`'s decimal point and thousands separator; a
    negative value that rounds to zero is zero ("-0,00" read as a loss in a table of
    differences; Python 3.11's "z" spec does this)."""
    return localise(_unsigned_zero(format(value, spec), spec), lang)


def _unsigned_zero(text: str, spec: str) -> str:
    """`text` (a number formatted with `spec`) with the sign of a negative number that rounds
    to zero dropped, or made "+" where the spec asks for a sign."""
    if text.lstrip().startswith("-") and set(text.strip()) <= set("-0.,%"):  # not -inf
        return text.replace("-", "+" if "+" in spec else "", 1)
    return text


def setting_text(value: Any, lang: str = "en") -> str:
    """A setting's value as labels show it: a list as 128-64, a float as %g, the decimal mark
    `lang`'s."""
    if isinstance(value, (list, tuple)):
        return "-".join(setting_text(v, lang) for v in value)
    if isinstance(value, bool) and lang != "en":  # English keeps True: stored labels use it
        return t(lang, "yes" if value else "no")
    if isinstance(value, float):
        return localise(f"{value + 0.0:g}", lang)  # -0.0 is 0 (one value, two run folders)
    return str(value)


def choice_text(value: Any, lang: str = "en") -> str:
    """A searched choice as a space file writes it: true and false as TOML spells them (a
    study's stored labels keep setting_text's, which they were made with)."""
    return ("true" if value else "false") if isinstance(value, bool) else setting_text(value, lang)


def settings_text(values: dict[str, Any], lang: str = "en") -> str:
    """`lr=0.01, optimizer=adam` in English (the names files and flags use); in Spanish the
    settings' names there, apart with semicolons, whose decimal commas could be read as
    apart (`tasa de aprendizaje 0,01; optimizador adam`): always, so that the cells of one
    grid read alike ("dropout 0, tamaño de lote 32" stood beside "dropout 0,3; tamaño de lote
    32")."""
    parts = [named_setting(k, value_said(k, v, lang), lang) for k, v in values.items()]
    return listed(parts) if lang == "en" else "; ".join(parts)


def in_list(label: str, lang: str) -> str:
    """A label as one item of a list apart with semicolons: quoted where it holds one itself
    (a Spanish grid cell, `«dropout 0,3; tamaño de lote 32»`), so the list reads as its items."""
    if ";" not in label:
        return label
    return f"«{label}»" if lang == "es" else f'"{label}"'


def value_said(name: str, value: Any, lang: str) -> str:
    """A setting's value in a sentence of `lang`: as setting_text writes it, but for a word
    the catalogue has in `lang` (`constante`) and a count written as the text's other
    counts are (`5.000` beside "5.000 de validación"), outside English, which keeps what a
    flag takes."""
    if lang != "en":
        words = catalogue().get(f"value.{name}.{value}") if isinstance(value, str) else None
        if words is not None:
            return words[lang]
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1000:
            return number(value, ",d", lang)
    return setting_text(value, lang)


def named_setting(name: str, shown: str, lang: str) -> str:
    """A setting and its value as written (`shown`): `lr=0.01` in English, the setting's
    name in `lang` before it elsewhere (`tasa de aprendizaje 0,01`)."""
    names = catalogue().get(f"setting.{name}")
    if lang == "en" or names is None:
        return f"{name}={shown}"
    return f"{names[lang]} {shown}"


def setting_label(name: str, lang: str) -> str:
    """A setting named on a figure's axis: its key in English (`batch_size`, as the space
    file writes it), its name in another language (`tamaño de lote`)."""
    names = catalogue().get(f"setting.{name}")
    return name if lang == "en" or names is None else names[lang]


def factor_text(factor: str, lang: str) -> str:
    """An experiment's factor as the report names it: its settings' key in code (`lr`,
    `optimizer×hidden`), in another language their names first (`tasa de aprendizaje (`lr`)`):
    the Spanish report named them only by their English keys."""
    names = [catalogue().get(f"setting.{key}") for key in factor.split("×")]
    if lang == "en" or None in names:
        return f"`{factor}`"
    return f"{' × '.join(n[lang] for n in names)} (`{factor}`)"


def listed(parts: list[str]) -> str:
    """`0.01, 0.1`; apart with semicolons where one holds a comma (`0,0001; 0,01`)."""
    return ("; " if any("," in p for p in parts) else ", ").join(parts)


def in_words(parts: list[str], lang: str) -> str:
    """A list as a sentence says it: `5, 20 and 30`; `0,0001; 0,01 y 0,1`."""
    if len(parts) < 2:
        return listed(parts)
    return f"{listed(parts[:-1])} {t(lang, 'and')} {parts[-1]}"


class _Formatter(string.Formatter):
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:  # a figure not measured (null in a stored finding): a dash, not a crash
            return "—"
        if "|" in format_spec and isinstance(value, int):  # {n:seed|seeds}: "1 seed", "3 seeds"
            one, many = format_spec.split("|", 1)
            return f"{localise(format(value, ','), self.lang)} {one if value == 1 else many}"
        text = super().format_field(value, format_spec)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return localise(_unsigned_zero(text, format_spec), self.lang)
        return text


def t(lang: str, key: str, **values: Any) -> str:
    """The message `key` in `lang`, its placeholders filled with `values`."""
    return _Formatter(lang).format(catalogue()[key][lang], **values)


def class_names(names: list[str] | tuple[str, ...], lang: str) -> list[str]:
    """A known dataset's class names in `lang` (Fashion-MNIST's clothes); others as given."""
    key = known_classes(names)
    return catalogue()[key][lang].split("|") if key else list(names)


def known_classes(names: list[str] | tuple[str, ...]) -> str:
    """The catalogue's key of a known dataset's class names ("classes.fashion-mnist"), or ""
    (a user's own "Bag", "Box", "Cup" are theirs, not Fashion-MNIST's to translate)."""
    return next((key for key, texts in catalogue().items()
                 if key.startswith("classes.") and list(names) == texts["en"].split("|")), "")


def class_name(name: str, lang: str, of: str) -> str:
    """A class name of the known names `of` (a known_classes key) in `lang` ("Trouser" ->
    "Pantalón"); as given where `of` is "" or does not hold it."""
    english = catalogue()[of]["en"].split("|") if of in catalogue() else []
    return class_names(english, lang)[english.index(name)] if name in english else name


def placeholders(template: str) -> set[str]:
    """The names a template formats."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}

"""Message catalogue for reports: every heading, table header and generated sentence, en and es.

`t(lang, key, **values)` formats one message; a key missing in a language is a bug, and
tests check both catalogues have the same keys and placeholders.
"""

from __future__ import annotations

LANGS = ("en", "es")

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "method": "Method",
        "method.data": "Dataset **{dataset}**: {train:,} training images, {val:,} validation "
                       "images {val_where}, and the test set ({test:,} images), which only the "
                       "final model(s) touch.",
        "method.val_train": "held out of the training set (stratified by class)",
        "method.val_test": "taken from the test set, as the original did (the test accuracy is "
                           "then not an unbiased estimate)",
        "method.seeds": "Each configuration was trained with {n} seed(s) ({seeds}); seeds change "
                        "the initialisation, the data order, dropout masks and the validation "
                        "split. Tables show mean ± sd over seeds.",
        "method.one_seed": "With one seed there is **no noise estimate**: differences below are "
                           "single runs and may be noise. Run with `--seeds 3` or more.",
        "method.accuracy": "Train accuracy is reported twice: **running** (averaged over the "
                           "epoch while dropout and augmentation are on, what most scripts "
                           "print) and **eval mode** (dropout off, no augmentation, on a fixed "
                           "sample of {eval_n:,} training images, measured like validation). "
                           "The gap is eval-mode train minus validation.",
        "method.noise": "Δ vs base is the difference of mean validation accuracy from the base "
                        "configuration, with a 95% Welch t interval across seeds; it is marked "
                        "*within noise* when that interval covers zero.",
        "method.shared": "Identical configurations are trained once ({distinct} distinct runs "
                         "for {cells} table cells); with a constant learning rate a shorter run "
                         "is read off the longer run's history ({snapshots} such runs).",
        "method.base": "Base configuration: {base}.",
        "experiment": "Experiment: {name}",
        "factor": "Factor `{factor}`, values varied against the base, all else equal.",
        "col.value": "value",
        "col.train_eval": "train acc (eval)",
        "col.train_running": "train acc (running)",
        "col.val": "val acc",
        "col.gap": "gap",
        "col.delta": "Δ vs base (95% CI)",
        "col.original": "original (train / val)",
        "col.n": "n",
        "col.test": "test acc",
        "col.metric": "reported metric",
        "col.loss": "val loss",
        "col.experiment": "experiment",
        "col.best": "best value",
        "col.status": "status",
        "base_mark": "(base)",
        "within_noise": "within noise",
        "beyond_noise": "beyond noise",
        "no_noise": "n=1, no noise estimate",
        "accuracy_pct": "Accuracies in %.",
        "plot.curves": "Validation accuracy per epoch, mean over seeds: {name}",
        "plot.points": "Validation accuracy per value (mean ± sd): {name}",
        "summary": "Summary",
        "summary.intro": "Best value of each experiment by mean validation accuracy.",
        "recommended": "Recommended configuration",
        "recommended.intro": "Each factor's value is kept at the base unless a different "
                             "value beat it beyond the noise:",
        "recommended.change": "`{factor}` = {value}: {delta:+.2f} points over the base "
                              "({why}).",
        "recommended.keep": "`{factor}`: keep the base value {value} (no value beat it "
                            "beyond the noise).",
        "recommended.why_ci": "95% interval {low:+.2f} to {high:+.2f}",
        "recommended.why_one": "single run, no noise estimate",
        "final": "Final model",
        "final.config": "Configuration: {config}. Chosen {how}.",
        "final.how_explicit": "as given in the study file",
        "final.how_best": "by combining the best value of each experiment",
        "final.result": "Validation accuracy {val}; **test accuracy {test}** (n = {n}, the only "
                        "time the test set was used{extra}).",
        "final.original": "The original reported {orig:.2f}% validation accuracy for this "
                          "configuration; ours is {ours:.2f}% ({diff:+.2f} points).",
        "final.curves": "Learning curves of the final model (seed {seed})",
        "final.confusion": "Test confusion matrix (seed {seed})",
        "final.per_class": "Per-class test accuracy (seed {seed})",
        "final.misclassified": "Misclassified test images, true → predicted (seed {seed})",
        "trials": "Trials",
        "trials.intro": "Each trial is a final model trained once per seed and scored on the "
                        "test set.",
        "col.trial": "trial",
        "col.orig_acc": "original accuracy / loss",
        "doctor": "Training doctor",
        "doctor.none": "No problems found in any run.",
        "doctor.found": "{title} (`{code}`) in {count} run(s): {runs}. {explanation} "
                        "Fix: {fix}",
        "doctor.example": "Evidence ({run}): {evidence}",
        "conclusions": "Conclusions",
        "concl.beyond": "**{name}**: {better} changed validation accuracy beyond the noise "
                        "({details}).",
        "concl.within": "**{name}**: no value differed from the base beyond the noise "
                        "(largest difference {delta:+.2f} points, for {value}).",
        "concl.single": "**{name}**: best value {value} ({delta:+.2f} points over the base in "
                        "a single run each; no noise estimate).",
        "concl.detail": "{value}: {delta:+.2f} points",
        "concl.original_diff": "Where our numbers and the original's differ by more than 3 "
                               "points: {rows}.",
        "concl.original_close": "Our validation accuracy is within 3 points of the original's "
                                "in {close} of {total} comparable rows.",
        "concl.running_gap": "In {n} configuration(s) the running train accuracy is below "
                             "validation while the eval-mode train accuracy is not: the "
                             "original's 'validation beats training' is a measurement "
                             "artefact of averaging under dropout, not good generalisation.",
        "concl.val_source": "The original validated on the test set; we validate on images "
                            "held out of the training set, and with a fixed seed set.",
        "concl.quick": "This is the quick form (a subset of the training images): its numbers "
                       "are not comparable with the original's; run without --quick for that.",
        "concl.failure": "The reproduced failure reports {metric:.4f} '{metric_name}' with "
                         "loss {loss:.4f} while its true accuracy is {true:.4f}: the 0.9000 "
                         "plateau of the original. The correct trials reach {best}.",
        "concl.trials": "Every trial trained right reaches at least {low} test accuracy "
                        "(lowest: {label}).",
        "reason.delta_pts": "points",
        "runs_table": "All runs",
        "results_csv": "Every run is in `results.csv` (one row per distinct run).",
        "status_note": "{n} run(s) did not complete normally: {runs}.",
    },
    "es": {
        "method": "Método",
        "method.data": "Conjunto **{dataset}**: {train:,} imágenes de entrenamiento, {val:,} "
                       "de validación {val_where}, y el conjunto de prueba ({test:,} imágenes), "
                       "que solo usan los modelos finales.",
        "method.val_train": "apartadas del conjunto de entrenamiento (estratificadas por clase)",
        "method.val_test": "tomadas del conjunto de prueba, como hizo el original (la exactitud "
                           "de prueba deja de ser una estimación sin sesgo)",
        "method.seeds": "Cada configuración se entrenó con {n} semilla(s) ({seeds}); la semilla "
                        "cambia la inicialización, el orden de los datos, las máscaras de "
                        "dropout y la partición de validación. Las tablas muestran media ± "
                        "desviación estándar entre semillas.",
        "method.one_seed": "Con una sola semilla **no hay estimación del ruido**: las "
                           "diferencias son de ejecuciones únicas y pueden ser ruido. Usa "
                           "`--seeds 3` o más.",
        "method.accuracy": "La exactitud de entrenamiento se da dos veces: **en marcha** "
                           "(promediada durante la época con dropout y aumento activos, lo que "
                           "imprimen la mayoría de los scripts) y **en modo evaluación** (sin "
                           "dropout ni aumento, sobre una muestra fija de {eval_n:,} imágenes "
                           "de entrenamiento, medida como la validación). La brecha es "
                           "entrenamiento en modo evaluación menos validación.",
        "method.noise": "Δ frente a la base es la diferencia de la exactitud media de "
                        "validación respecto a la configuración base, con un intervalo del 95% "
                        "de Welch entre semillas; se marca *dentro del ruido* cuando el "
                        "intervalo contiene el cero.",
        "method.shared": "Las configuraciones idénticas se entrenan una sola vez ({distinct} "
                         "ejecuciones distintas para {cells} celdas de las tablas); con tasa de "
                         "aprendizaje constante, una ejecución más corta se lee del historial "
                         "de la más larga ({snapshots} ejecuciones así).",
        "method.base": "Configuración base: {base}.",
        "experiment": "Experimento: {name}",
        "factor": "Factor `{factor}`, valores variados respecto a la base, todo lo demás igual.",
        "col.value": "valor",
        "col.train_eval": "exact. entren. (evaluación)",
        "col.train_running": "exact. entren. (en marcha)",
        "col.val": "exact. validación",
        "col.gap": "brecha",
        "col.delta": "Δ frente a la base (IC 95%)",
        "col.original": "original (entren. / valid.)",
        "col.n": "n",
        "col.test": "exact. prueba",
        "col.metric": "métrica reportada",
        "col.loss": "pérdida valid.",
        "col.experiment": "experimento",
        "col.best": "mejor valor",
        "col.status": "estado",
        "base_mark": "(base)",
        "within_noise": "dentro del ruido",
        "beyond_noise": "fuera del ruido",
        "no_noise": "n=1, sin estimación del ruido",
        "accuracy_pct": "Exactitudes en %.",
        "plot.curves": "Exactitud de validación por época, media entre semillas: {name}",
        "plot.points": "Exactitud de validación por valor (media ± desv.): {name}",
        "summary": "Resumen",
        "summary.intro": "Mejor valor de cada experimento según la exactitud media de "
                         "validación.",
        "recommended": "Configuración recomendada",
        "recommended.intro": "Cada factor se deja en su valor base salvo que otro valor la "
                             "superara fuera del ruido:",
        "recommended.change": "`{factor}` = {value}: {delta:+.2f} puntos sobre la base "
                              "({why}).",
        "recommended.keep": "`{factor}`: mantener el valor base {value} (ningún valor la "
                            "superó fuera del ruido).",
        "recommended.why_ci": "intervalo del 95% de {low:+.2f} a {high:+.2f}",
        "recommended.why_one": "ejecución única, sin estimación del ruido",
        "final": "Modelo final",
        "final.config": "Configuración: {config}. Elegida {how}.",
        "final.how_explicit": "tal como indica el archivo del estudio",
        "final.how_best": "combinando el mejor valor de cada experimento",
        "final.result": "Exactitud de validación {val}; **exactitud de prueba {test}** (n = "
                        "{n}, la única vez que se usó el conjunto de prueba{extra}).",
        "final.original": "El original reportó un {orig:.2f}% de exactitud de validación con "
                          "esta configuración; la nuestra es {ours:.2f}% ({diff:+.2f} puntos).",
        "final.curves": "Curvas de aprendizaje del modelo final (semilla {seed})",
        "final.confusion": "Matriz de confusión en prueba (semilla {seed})",
        "final.per_class": "Exactitud de prueba por clase (semilla {seed})",
        "final.misclassified": "Imágenes de prueba mal clasificadas, real → predicha "
                               "(semilla {seed})",
        "trials": "Pruebas",
        "trials.intro": "Cada prueba es un modelo final, entrenado una vez por semilla y "
                        "evaluado en el conjunto de prueba.",
        "col.trial": "prueba",
        "col.orig_acc": "exactitud / pérdida del original",
        "doctor": "Diagnóstico del entrenamiento",
        "doctor.none": "No se encontraron problemas en ninguna ejecución.",
        "doctor.found": "{title} (`{code}`) en {count} ejecución(es): {runs}. {explanation} "
                        "Solución: {fix}",
        "doctor.example": "Evidencia ({run}): {evidence}",
        "conclusions": "Conclusiones",
        "concl.beyond": "**{name}**: {better} cambió la exactitud de validación fuera del "
                        "ruido ({details}).",
        "concl.within": "**{name}**: ningún valor difirió de la base fuera del ruido (mayor "
                        "diferencia {delta:+.2f} puntos, con {value}).",
        "concl.single": "**{name}**: mejor valor {value} ({delta:+.2f} puntos sobre la base, "
                        "con una ejecución cada uno; sin estimación del ruido).",
        "concl.detail": "{value}: {delta:+.2f} puntos",
        "concl.original_diff": "Donde nuestros números y los del original difieren en más de "
                               "3 puntos: {rows}.",
        "concl.original_close": "Nuestra exactitud de validación queda a menos de 3 puntos de "
                                "la del original en {close} de {total} filas comparables.",
        "concl.running_gap": "En {n} configuración(es) la exactitud de entrenamiento en "
                             "marcha queda por debajo de la validación mientras que la de modo "
                             "evaluación no: el 'la validación supera al entrenamiento' del "
                             "original es un artefacto de medir bajo dropout, no buena "
                             "generalización.",
        "concl.val_source": "El original validó sobre el conjunto de prueba; nosotros validamos "
                            "con imágenes apartadas del entrenamiento y semillas fijas.",
        "concl.quick": "Esta es la forma rápida (un subconjunto de las imágenes de "
                       "entrenamiento): sus números no son comparables con los del original; "
                       "ejecuta sin --quick para eso.",
        "concl.failure": "El fallo reproducido reporta {metric:.4f} de '{metric_name}' con "
                         "pérdida {loss:.4f} mientras su exactitud real es {true:.4f}: la "
                         "meseta de 0.9000 del original. Las pruebas correctas alcanzan {best}.",
        "concl.trials": "Toda prueba entrenada correctamente alcanza al menos {low} de "
                        "exactitud de prueba (la más baja: {label}).",
        "reason.delta_pts": "puntos",
        "runs_table": "Todas las ejecuciones",
        "results_csv": "Cada ejecución está en `results.csv` (una fila por ejecución distinta).",
        "status_note": "{n} ejecución(es) no terminaron con normalidad: {runs}.",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    return MESSAGES[lang][key].format(**values)

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
        "method.seeds": "Each configuration was trained with {n} seed(s) ({seeds}); a seed sets "
                        "the initialisation and the dropout masks, while the validation split "
                        "and the batch order are the same for every seed (`data_seed`), so "
                        "runs that differ only in seed can train together. Tables show mean ± "
                        "sd over seeds.",
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
        # --- tune report (mnistlab tune) ---
        "tune.intro": "An Optuna search: a TPE sampler seeded with {seed} proposes each "
                      "trial's settings from the results so far; every trial trains on the "
                      "training split and is judged by its final validation accuracy. The test "
                      "set is used once, by the retrained best configuration.",
        "tune.pruner.median": "Pruning: median. A trial stops when its validation accuracy at "
                              "an epoch is below the median of earlier trials at that epoch "
                              "(from the sixth trial on).",
        "tune.pruner.hyperband": "Pruning: Hyperband. Trials are spread over brackets with "
                                 "budgets from 1 to {max_epochs} epochs, and only the best "
                                 "third of each bracket goes on at every rung.",
        "tune.pruner.none": "No pruning: every trial trains for all its epochs.",
        "tune.counts": "The study holds {total} trial(s): {complete} complete, {pruned} "
                       "pruned, {other} failed or unfinished; {target} finished trials were "
                       "asked for. Storage `{storage}`, study `{study}`.",
        "tune.base": "Base configuration (settings not searched): {base}.",
        "tune.quick": "This is the quick form (a subset of the training images and at most "
                      "a few epochs): it checks the pipeline, and its numbers are not "
                      "comparable with a full search.",
        "tune.space": "Search space",
        "tune.type.float": "real",
        "tune.type.int": "whole number",
        "tune.type.categorical": "choice",
        "tune.log": "log scale",
        "tune.step": "step",
        "tune.when": "only when {cond}",
        "tune.always": "always",
        "col.param": "parameter",
        "col.type": "type",
        "col.range": "range or choices",
        "col.condition": "searched",
        "tune.best": "Best trial",
        "tune.best.text": "Trial {number} reached **{val}** validation accuracy (a single run "
                          "with seed {seed}, chosen as the best of {n} complete trials, so "
                          "optimistic) with {params}.",
        "tune.best.none": "No trial has completed yet, so there is no best configuration.",
        "tune.best.config": "Full configuration: {config}. It is in `best.toml`; "
                            "`mnistlab train --config best.toml` trains it again.",
        "tune.trials": "Trials",
        "tune.trials.intro": "Every trial in the order it was started. A pruned trial shows "
                             "the validation accuracy of the last epoch it reached.",
        "col.tune_trial": "trial",
        "col.state": "state",
        "col.epochs": "epochs",
        "col.seconds": "seconds",
        "col.params": "settings",
        "state.complete": "complete",
        "state.pruned": "pruned at epoch {epoch}",
        "state.fail": "failed",
        "state.running": "running",
        "state.waiting": "waiting",
        "tune.history": "Optimisation history",
        "tune.history.caption": "Validation accuracy of each trial, and the best so far",
        "plot.complete": "complete",
        "plot.pruned": "pruned (last epoch reached)",
        "plot.best": "best so far",
        "plot.trial": "trial number",
        "plot.val": "validation accuracy",
        "plot.importance": "fANOVA importance (mean ± sd over {n} evaluations)",
        "tune.importance": "Parameter importances",
        "tune.importance.intro": "Importances from Optuna's fANOVA evaluator over the {n} "
                                 "complete trials, evaluated {repeats} times with different "
                                 "random-forest seeds. They vary from one evaluation to the "
                                 "next, so each is given as mean ± sd; each evaluation sums to "
                                 "1. Pruned trials and parameters missing from some trials "
                                 "(conditional ones) are not scored.",
        "tune.importance.none": "Importances could not be estimated ({why}).",
        "tune.importance.too_few": "fewer than two complete trials",
        "col.importance": "importance (mean ± sd)",
        "col.spread": "lowest – highest",
        "tune.parallel": "Parallel coordinates",
        "tune.parallel.caption": "Each complete trial as a line through its settings and its "
                                 "validation accuracy; lighter lines are better trials",
        "tune.slice": "Slice plots",
        "tune.slice.caption": "Validation accuracy against each setting, complete trials "
                              "(colour: trial order, later trials lighter)",
        "tune.retrain": "Best configuration, retrained",
        "tune.retrain.intro": "The best trial's configuration was trained again with {n} fresh "
                              "seed(s) ({seeds}) and scored once on the test set. The search "
                              "picked it on validation accuracy with seed {search_seed}, so "
                              "its trial value is optimistic; these runs are not picked.",
        "tune.retrain.none": "No retraining was asked for (--retrain-seeds 0), so no test "
                             "accuracy was computed.",
        "col.config": "configuration",
        "tune.row.best": "best trial's configuration",
        "tune.row.published": "{label}, published",
        "tune.compare.ours": "Against {label} retrained here with the same seeds: "
                             "{diff:+.2f} points of validation accuracy ({ours:.2f}% vs "
                             "{theirs:.2f}%; {why}) and {test_diff:+.2f} points of test "
                             "accuracy.",
        "tune.compare.published": "Against the published {published:.2f}% validation accuracy "
                                  "of {label}{note}: {diff:+.2f} points.",
        "tune.compare.quick": "Quick form: not compared with the published {published:.2f}%, "
                              "which came from full data and full-length training.",
        "tune.concl.best": "The best configuration found reaches {val} validation and {test} "
                           "test accuracy (mean ± sd over n = {n} retrained seed(s)).",
        "tune.concl.pruned": "Pruning stopped {pruned} of {finished} finished trials early, "
                             "skipping {saved} of their {planned} planned epochs.",
        "tune.concl.top": "The most important setting was `{name}` (fANOVA {mean:.2f} ± "
                          "{sd:.2f}).",
        "tune.files": "Every trial is in `trials.csv`; the study itself is in the storage, "
                      "and re-running the same command resumes it.",
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
                        "fija la inicialización y las máscaras de dropout, mientras que la "
                        "partición de validación y el orden de los lotes son los mismos para "
                        "todas las semillas (`data_seed`), de modo que las ejecuciones que solo "
                        "difieren en la semilla pueden entrenarse juntas. Las tablas muestran "
                        "media ± desviación estándar entre semillas.",
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
        # --- informe de búsqueda (mnistlab tune) ---
        "tune.intro": "Una búsqueda con Optuna: un muestreador TPE con semilla {seed} propone "
                      "los ajustes de cada ensayo a partir de los resultados anteriores; cada "
                      "ensayo entrena con la partición de entrenamiento y se juzga por su "
                      "exactitud final de validación. El conjunto de prueba se usa una sola "
                      "vez, con la mejor configuración reentrenada.",
        "tune.pruner.median": "Poda: mediana. Un ensayo se detiene cuando su exactitud de "
                              "validación en una época queda por debajo de la mediana de los "
                              "ensayos anteriores en esa época (a partir del sexto ensayo).",
        "tune.pruner.hyperband": "Poda: Hyperband. Los ensayos se reparten en grupos con "
                                 "presupuestos de 1 a {max_epochs} épocas, y en cada escalón "
                                 "solo sigue el mejor tercio de cada grupo.",
        "tune.pruner.none": "Sin poda: cada ensayo entrena todas sus épocas.",
        "tune.counts": "El estudio tiene {total} ensayo(s): {complete} completos, {pruned} "
                       "podados, {other} fallidos o sin terminar; se pidieron {target} "
                       "ensayos terminados. Almacenamiento `{storage}`, estudio `{study}`.",
        "tune.base": "Configuración base (ajustes que no se buscan): {base}.",
        "tune.quick": "Esta es la forma rápida (un subconjunto de las imágenes de "
                      "entrenamiento y pocas épocas): comprueba el proceso, y sus números no "
                      "son comparables con una búsqueda completa.",
        "tune.space": "Espacio de búsqueda",
        "tune.type.float": "número real",
        "tune.type.int": "número entero",
        "tune.type.categorical": "opción",
        "tune.log": "escala logarítmica",
        "tune.step": "paso",
        "tune.when": "solo si {cond}",
        "tune.always": "siempre",
        "col.param": "parámetro",
        "col.type": "tipo",
        "col.range": "rango u opciones",
        "col.condition": "se busca",
        "tune.best": "Mejor ensayo",
        "tune.best.text": "El ensayo {number} alcanzó **{val}** de exactitud de validación "
                          "(una sola ejecución con semilla {seed}, elegida como la mejor de "
                          "{n} ensayos completos, por tanto optimista) con {params}.",
        "tune.best.none": "Ningún ensayo ha terminado todavía, así que no hay mejor "
                          "configuración.",
        "tune.best.config": "Configuración completa: {config}. Está en `best.toml`; "
                            "`mnistlab train --config best.toml` la vuelve a entrenar.",
        "tune.trials": "Ensayos",
        "tune.trials.intro": "Todos los ensayos en el orden en que empezaron. Un ensayo podado "
                             "muestra la exactitud de validación de la última época que "
                             "alcanzó.",
        "col.tune_trial": "ensayo",
        "col.state": "estado",
        "col.epochs": "épocas",
        "col.seconds": "segundos",
        "col.params": "ajustes",
        "state.complete": "completo",
        "state.pruned": "podado en la época {epoch}",
        "state.fail": "fallido",
        "state.running": "en curso",
        "state.waiting": "en espera",
        "tune.history": "Historia de la optimización",
        "tune.history.caption": "Exactitud de validación de cada ensayo, y la mejor hasta ese "
                                "momento",
        "plot.complete": "completo",
        "plot.pruned": "podado (última época alcanzada)",
        "plot.best": "mejor hasta ahora",
        "plot.trial": "número de ensayo",
        "plot.val": "exactitud de validación",
        "plot.importance": "importancia fANOVA (media ± desv. en {n} evaluaciones)",
        "tune.importance": "Importancia de los parámetros",
        "tune.importance.intro": "Importancias del evaluador fANOVA de Optuna sobre los {n} "
                                 "ensayos completos, evaluadas {repeats} veces con distintas "
                                 "semillas del bosque aleatorio. Varían de una evaluación a "
                                 "otra, por eso se dan como media ± desviación; cada "
                                 "evaluación suma 1. No se puntúan los ensayos podados ni los "
                                 "parámetros ausentes en algunos ensayos (los condicionales).",
        "tune.importance.none": "No se pudieron estimar las importancias ({why}).",
        "tune.importance.too_few": "hay menos de dos ensayos completos",
        "col.importance": "importancia (media ± desv.)",
        "col.spread": "mínima – máxima",
        "tune.parallel": "Coordenadas paralelas",
        "tune.parallel.caption": "Cada ensayo completo como una línea por sus ajustes y su "
                                 "exactitud de validación; las líneas más claras son los "
                                 "mejores ensayos",
        "tune.slice": "Gráficos de corte",
        "tune.slice.caption": "Exactitud de validación frente a cada ajuste, ensayos completos "
                              "(color: orden de los ensayos, los últimos más claros)",
        "tune.retrain": "Mejor configuración, reentrenada",
        "tune.retrain.intro": "La configuración del mejor ensayo se entrenó de nuevo con {n} "
                              "semilla(s) nuevas ({seeds}) y se evaluó una vez en el conjunto "
                              "de prueba. La búsqueda la eligió por su exactitud de validación "
                              "con la semilla {search_seed}, así que el valor de su ensayo es "
                              "optimista; estas ejecuciones no fueron elegidas.",
        "tune.retrain.none": "No se pidió reentrenar (--retrain-seeds 0), así que no se midió "
                             "la exactitud de prueba.",
        "col.config": "configuración",
        "tune.row.best": "configuración del mejor ensayo",
        "tune.row.published": "{label}, publicada",
        "tune.compare.ours": "Frente a {label} reentrenada aquí con las mismas semillas: "
                             "{diff:+.2f} puntos de exactitud de validación ({ours:.2f}% "
                             "frente a {theirs:.2f}%; {why}) y {test_diff:+.2f} puntos de "
                             "exactitud de prueba.",
        "tune.compare.published": "Frente al {published:.2f}% de exactitud de validación "
                                  "publicado para {label}{note}: {diff:+.2f} puntos.",
        "tune.compare.quick": "Forma rápida: no se compara con el {published:.2f}% publicado, "
                              "que se obtuvo con todos los datos y el entrenamiento completo.",
        "tune.concl.best": "La mejor configuración encontrada alcanza {val} de exactitud de "
                           "validación y {test} de prueba (media ± desv. con n = {n} "
                           "semilla(s) reentrenadas).",
        "tune.concl.pruned": "La poda detuvo antes de tiempo {pruned} de {finished} ensayos "
                             "terminados, ahorrando {saved} de sus {planned} épocas previstas.",
        "tune.concl.top": "El ajuste más importante fue `{name}` (fANOVA {mean:.2f} ± "
                          "{sd:.2f}).",
        "tune.files": "Cada ensayo está en `trials.csv`; el estudio en sí está en el "
                      "almacenamiento, y volver a ejecutar la misma orden lo reanuda.",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    return MESSAGES[lang][key].format(**values)

# Extra nlme reference fits for the residual structures the public set does not cover:
# corCAR1 with varPower, corAR1 over positions with gaps together with varIdent, compound
# symmetry (alone and with varIdent), an ML fit, and prior weights (nlme's varFixed(~ 1/w)).
# Also nlme's normalized residuals of the public nlme cases. Run from the repository root:
#   Rscript tools/r/make_structured_extra_fixtures.R
# Writes tests/fixtures/structured_extra/<id>.json (nlme 3.1-162 on R 4.2, Debian packages).
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
source("tools/r/datasets.R")
out_dir <- "tests/fixtures/structured_extra"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
sleep <- load_data("sleepstudy")
sleep$w <- 1 + (sleep$Days %% 3)        # prior weights 1, 2, 3
sleep$invw <- 1 / sleep$w
ortho <- load_data("Orthodont")
body <- load_data("BodyWeight")
ovary <- load_data("Ovary")

# The residual SD of each stratum (sigma times nlme's ratio), whatever stratum nlme takes as
# its reference.
stratum_sd <- function(m) {
  vs <- m$modelStruct$varStruct
  if (is.null(vs) || !inherits(vs, "varIdent")) return(NULL)
  ratios <- coef(vs, unconstrained = FALSE, allCoef = TRUE)
  as.list(m$sigma * ratios)
}
record <- function(id, m, formula, correlation, variance, weights = NULL, call_text) {
  s <- summary(m)
  cs <- m$modelStruct$corStruct
  vs <- m$modelStruct$varStruct
  cor_par <- if (is.null(cs)) NULL else as.list(coef(cs, unconstrained = FALSE))
  if (!is.null(cor_par)) names(cor_par) <- if (inherits(cs, "corCompSymm")) "Rho" else "Phi"
  power <- if (!is.null(vs) && inherits(vs, "varPower")) coef(vs, unconstrained = FALSE) else NULL
  list(id = id, engine = "nlme", formula = formula, correlation = correlation,
       variance = variance, weights = weights, REML = m$method == "REML", R_call = call_text,
       logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
       se = as.list(sqrt(diag(vcov(m)))), sigma = m$sigma,
       re_sd = as.list(sqrt(diag(as.matrix(getVarCov(m, type = "random.effects"))))),
       correlation_params = cor_par,
       power = if (is.null(power)) NULL else as.numeric(power),
       stratum_sd = stratum_sd(m), nobs = nrow(m$data),
       fitted_first20 = unname(fitted(m)[1:20]),
       normalized_first20 = unname(resid(m, type = "normalized")[1:20]),
       pearson_first20 = unname(resid(m, type = "pearson")[1:20]),
       versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme"))))
}
write_case <- function(x) {
  writeLines(toJSON(x, auto_unbox = TRUE, digits = 15, null = "null", pretty = FALSE),
             file.path(out_dir, paste0(x$id, ".json")))
}

ctl <- lmeControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-12,
                  niterEM = 100)
m <- lme(weight ~ Time * Diet, data = body, random = ~ Time | Rat,
         correlation = corCAR1(form = ~ Time | Rat), weights = varPower(form = ~ Time),
         control = ctl)
write_case(record("bodyweight_car1_varpower", m, "weight ~ Time * Diet + (Time | Rat)",
                  "corCAR1('~ Time | Rat')", "varPower('~ Time')", NULL,
                  "lme(weight ~ Time * Diet, random = ~ Time | Rat, correlation = corCAR1(form = ~ Time | Rat), weights = varPower(form = ~ Time))"))

# Positions with gaps (days 2 and 5 left out) and a residual SD per phase.
gaps <- sleep[!(sleep$Days %in% c(2, 5)), ]
gaps$phase <- factor(ifelse(gaps$Days < 5, "early", "late"), levels = c("early", "late"))
m <- lme(Reaction ~ Days, data = gaps, random = ~ 1 | Subject,
         correlation = corAR1(form = ~ Days | Subject), weights = varIdent(form = ~ 1 | phase),
         control = ctl)
write_case(record("sleepstudy_ar1_gaps_varident", m, "Reaction ~ Days + (1 | Subject)",
                  "corAR1('~ Days | Subject')", "varIdent('~ 1 | phase')", NULL,
                  "lme(Reaction ~ Days, data = sleepstudy without days 2 and 5, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject), weights = varIdent(form = ~ 1 | phase)), phase = early (Days < 5) / late"))

m <- lme(distance ~ age * Sex, data = ortho, random = ~ 0 + age | Subject,
         correlation = corCompSymm(form = ~ 1 | Subject), control = ctl)
write_case(record("orthodont_cs_slope", m, "distance ~ age * Sex + (0 + age | Subject)",
                  "corCompSymm('~ 1 | Subject')", NULL, NULL,
                  "lme(distance ~ age * Sex, random = ~ 0 + age | Subject, correlation = corCompSymm(form = ~ 1 | Subject))"))

m <- lme(distance ~ age * Sex, data = ortho, random = ~ 0 + age | Subject,
         correlation = corCompSymm(form = ~ 1 | Subject), weights = varIdent(form = ~ 1 | Sex),
         control = ctl)
write_case(record("orthodont_cs_varident", m, "distance ~ age * Sex + (0 + age | Subject)",
                  "corCompSymm('~ 1 | Subject')", "varIdent('~ 1 | Sex')", NULL,
                  "lme(distance ~ age * Sex, random = ~ 0 + age | Subject, correlation = corCompSymm(form = ~ 1 | Subject), weights = varIdent(form = ~ 1 | Sex))"))

m <- lme(Reaction ~ Days, data = sleep, random = ~ 1 | Subject,
         correlation = corAR1(form = ~ Days | Subject), method = "ML", control = ctl)
write_case(record("sleepstudy_ar1_ml", m, "Reaction ~ Days + (1 | Subject)",
                  "corAR1('~ Days | Subject')", NULL, NULL,
                  "lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject), method = 'ML')"))

m <- lme(Reaction ~ Days, data = sleep, random = ~ 1 | Subject,
         correlation = corAR1(form = ~ Days | Subject), weights = varFixed(~ invw),
         control = ctl)
write_case(record("sleepstudy_ar1_weights", m, "Reaction ~ Days + (1 | Subject)",
                  "corAR1('~ Days | Subject')", NULL, "w",
                  "lme(Reaction ~ Days, random = ~ 1 | Subject, correlation = corAR1(form = ~ Days | Subject), weights = varFixed(~ invw)), w = 1 + Days %% 3, invw = 1/w"))

# Normalized residuals of the public nlme cases (tests/fixtures/structured), as they were fitted.
public <- list(
  sleepstudy_ar1_resid = lme(Reaction ~ Days, data = sleep, random = ~ 1 | Subject,
                             correlation = corAR1(form = ~ Days | Subject)),
  ovary_ar1 = lme(follicles ~ sin(2*pi*Time) + cos(2*pi*Time), data = ovary,
                  random = list(Mare = pdDiag(~ sin(2*pi*Time))),
                  correlation = corAR1(form = ~ 1 | Mare)),
  bodyweight_car1 = lme(weight ~ Time * Diet, data = body, random = ~ Time | Rat,
                        correlation = corCAR1(form = ~ Time)),
  orthodont_varident = lme(distance ~ age * Sex, data = ortho, random = ~ 1 | Subject,
                           weights = varIdent(form = ~ 1 | Sex)))
write_case(list(id = "public_normalized",
                normalized_first20 = lapply(public, function(m) unname(resid(m, type = "normalized")[1:20])),
                pearson_first20 = lapply(public, function(m) unname(resid(m, type = "pearson")[1:20])),
                versions = list(R = R.version.string, nlme = as.character(packageVersion("nlme")))))

# Extra lme4 reference fits for syntax not covered by the public reference set.
# Run from the repository root: Rscript tools/r/make_extra_fixtures.R
# Writes tests/fixtures/extra/<id>.json (lme4 1.1-31 on R 4.2, Debian packages).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
source("tools/r/datasets.R")
cases <- list(
  list(id = "sleepstudy_double_bar", data = "sleepstudy", formula = "Reaction ~ Days + (Days || Subject)", REML = TRUE),
  list(id = "sleepstudy_slope_only", data = "sleepstudy", formula = "Reaction ~ Days + (0 + Days | Subject)", REML = TRUE),
  list(id = "machines_nested_slash", data = "Machines", formula = "score ~ Machine + (1 | Worker/Machine)", REML = TRUE),
  list(id = "machines_factor_slope", data = "Machines", formula = "score ~ Machine + (0 + Machine | Worker)", REML = TRUE),
  list(id = "machines_interaction_group", data = "Machines", formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", REML = FALSE),
  list(id = "orthodont_sex_age", data = "Orthodont", formula = "distance ~ age * Sex + (age | Subject)", REML = TRUE),
  list(id = "oxboys_quadratic", data = "Oxboys", formula = "height ~ age + I(age^2) + (age | Subject)", REML = FALSE),
  list(id = "cake_ordered_interaction", data = "cake", formula = "angle ~ recipe * temperature + (1 | recipe:replicate)", REML = TRUE),
  list(id = "grouseticks_log_scale", data = "grouseticks", formula = "log(TICKS + 1) ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", REML = TRUE),
  list(id = "penicillin_ml", data = "Penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = FALSE),
  list(id = "arabidopsis_lmm", data = "Arabidopsis", formula = "log(total.fruits + 1) ~ nutrient * amd + rack + status + (1 | popu) + (1 | gen)", REML = TRUE),
  list(id = "insteval_reml_service_dept", data = "InstEval", formula = "y ~ service * dept + (1 | s) + (1 | d)", REML = TRUE)
)
out_dir <- "tests/fixtures/extra"
for (cs in cases) {
  d <- load_data(cs$data)
  if (cs$data == "Arabidopsis") d$gen <- factor(d$gen)
  m <- lmer(as.formula(cs$formula), data = d, REML = cs$REML)
  vc <- as.data.frame(VarCorr(m))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  res <- list(
    id = cs$id, dataset = cs$data, formula = cs$formula, REML = cs$REML,
    lme4 = as.character(packageVersion("lme4")),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    theta = as.list(getME(m, "theta")), sigma = sigma(m),
    logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m),
    ngrps = as.list(ngrps(m)), isSingular = isSingular(m), nobs = nobs(m),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i],
      var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
      var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    ranef = list(grpvar = as.character(re$grpvar), term = as.character(re$term),
                 grp = as.character(re$grp), condval = re$condval, condsd = re$condsd),
    fitted_first20 = unname(head(fitted(m), 20))
  )
  writeLines(toJSON(res, auto_unbox = TRUE, digits = 15, null = "null"),
             file.path(out_dir, paste0(cs$id, ".json")))
  cat(cs$id, "done\n")
}

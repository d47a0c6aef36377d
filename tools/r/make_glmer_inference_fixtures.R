# lme4 references for glmer inference: drop1(test = "Chisq") and profile confidence intervals.
# Each model is fitted twice, with lme4's defaults and with tight settings (bobyqa in both
# stages, rhoend 1e-10, PIRLS to tolPwrss 1e-12). drop1() refits through update(), and
# profile() uses the fit's optimizer and control, so the tight fit gives tight refits and
# tight profiles: the judge where lme4's default Nelder-Mead stops short. Run from the
# repository root:
#   Rscript tools/r/make_glmer_inference_fixtures.R
# Writes tests/fixtures/extra_glmer/inference/<id>.json (lme4 1.1-31 on R 4.2).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
source("tools/r/datasets.R")
tight <- glmerControl(optimizer = c("bobyqa", "bobyqa"), tolPwrss = 1e-12,
                      optCtrl = list(maxfun = 1e6, rhoend = 1e-10))
# Runs expr and keeps its value with the warnings it raised (the fit's, drop1's, profile's).
with_warnings <- function(expr) {
  caught <- character(0)
  value <- withCallingHandlers(expr, warning = function(w) {
    caught <<- c(caught, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(value = value, warnings = caught)
}
fit_summary <- function(m) {
  list(fixef = as.list(fixef(m)), theta = as.list(getME(m, "theta")),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"))
}
drop1_rows <- function(m) {
  out <- with_warnings(drop1(m, test = "Chisq"))
  tab <- out$value
  list(rows = lapply(seq_len(nrow(tab)), function(i)
         list(term = rownames(tab)[i], npar = tab$npar[i], AIC = tab$AIC[i], LRT = tab$LRT[i],
              p_value = tab[["Pr(Chi)"]][i])),
       warnings = out$warnings)
}
profile_rows <- function(m) {
  t0 <- proc.time()[["elapsed"]]
  prof <- with_warnings(profile(m))
  ci <- with_warnings(confint(prof$value))
  elapsed <- proc.time()[["elapsed"]] - t0
  warned <- c(prof$warnings, ci$warnings)
  tab <- ci$value
  # A parameter is unreliable when lme4 warned about its profile (named in the message).
  rows <- lapply(seq_len(nrow(tab)), function(i) {
    name <- rownames(tab)[i]
    list(param = name, lower = tab[i, 1], upper = tab[i, 2],
         reliable = !any(grepl(name, warned, fixed = TRUE)))
  })
  # Other levels read the profile's splines further in and further out than 95 %.
  levels <- lapply(c(0.5, 0.9, 0.99), function(level) {
    tab <- suppressWarnings(confint(prof$value, level = level))
    list(level = level, rows = lapply(seq_len(nrow(tab)), function(i)
      list(param = rownames(tab)[i], lower = tab[i, 1], upper = tab[i, 2])))
  })
  trace <- as.data.frame(prof$value)
  trace$.par <- as.character(trace$.par)
  list(rows = rows, warnings = warned, elapsed_s = elapsed, levels = levels, trace = trace)
}
cases <- list(
  list(id = "cbpp_period", data = "cbpp",
       formula = "cbind(incidence, size - incidence) ~ period + (1|herd)",
       small = "cbind(incidence, size - incidence) ~ 1 + (1|herd)", profile = TRUE),
  list(id = "verbagg_main_effects", data = "VerbAgg",
       formula = "r2 ~ Anger + Gender + btype + (1|id) + (1|item)", profile = FALSE),
  list(id = "verbagg_interaction", data = "VerbAgg",
       formula = "r2 ~ Anger + Gender * btype + (1|id) + (1|item)", profile = FALSE)
)
out_dir <- "tests/fixtures/extra_glmer/inference"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
for (cs in cases) {
  d <- load_data(cs$data)
  f <- as.formula(cs$formula)
  m <- glmer(f, data = d, family = binomial)
  t <- glmer(f, data = d, family = binomial, control = tight)
  out <- list(id = cs$id, dataset = cs$data, formula = cs$formula, family = "binomial",
              lme4 = as.character(packageVersion("lme4")),
              tight_control = paste("glmerControl(optimizer = c('bobyqa', 'bobyqa'),",
                                    "tolPwrss = 1e-12,",
                                    "optCtrl = list(maxfun = 1e6, rhoend = 1e-10))"),
              default = fit_summary(m), tight = fit_summary(t),
              drop1 = list(default = drop1_rows(m), tight = drop1_rows(t)))
  if (!is.null(cs$small)) {
    fs <- as.formula(cs$small)
    out$small <- list(formula = cs$small,
                      default = fit_summary(glmer(fs, data = d, family = binomial)),
                      tight = fit_summary(glmer(fs, data = d, family = binomial,
                                                control = tight)))
  }
  if (isTRUE(cs$profile)) {
    out$profile <- list(default = profile_rows(m), tight = profile_rows(t))
  }
  write_json(out, file.path(out_dir, paste0(cs$id, ".json")), auto_unbox = TRUE, digits = 15,
             pretty = TRUE, null = "null", na = "null")
  cat(cs$id, as.numeric(logLik(m)), as.numeric(logLik(t)), "\n")
}

# lme4's answers at the edges (issue #10, items 1-2): term order with tied level counts,
# predict() with re.form naming some columns of a term, isSingular on (0 + f | g), level labels
# of numeric grouping factors, the warnings of badly scaled predictors and degenerate responses.
# Run from the repository root: Rscript tools/r/make_edges_fixtures.R
# Writes tests/fixtures/edges/*.json (and crossed_ties.csv, labels.csv, made here with R's RNG);
# reads tests/fixtures/edges/factor_slope.csv (see tests/fixtures/edges/README.md).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
out_dir <- "tests/fixtures/edges"
data_dir <- "src/mixedmodels/datasets/data"
sleep <- read.csv(gzfile(file.path(data_dir, "sleepstudy.csv.gz")))
sleep$Subject <- factor(sleep$Subject)

write_json_file <- function(x, name) {
  writeLines(toJSON(x, auto_unbox = TRUE, digits = 15, null = "null", na = "null"),
             file.path(out_dir, name))
  cat(name, "done\n")
}

# Every warning and message of a fit, in order.
fit_logged <- function(expr) {
  log <- character(0)
  value <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(list(error = conditionMessage(e)), class = "fit_error")),
    warning = function(w) { log <<- c(log, paste("warning:", conditionMessage(w))); invokeRestart("muffleWarning") },
    message = function(m) { log <<- c(log, paste("message:", trimws(conditionMessage(m)))); invokeRestart("muffleMessage") })
  list(fit = value, log = log)
}

describe <- function(m, log) {
  vc <- as.data.frame(VarCorr(m))
  re <- as.data.frame(ranef(m, condVar = TRUE))
  list(
    fixef = as.list(fixef(m)), theta = as.list(getME(m, "theta")), sigma = sigma(m),
    REML = isREML(m), objective = if (isREML(m)) REMLcrit(m) else deviance(m),
    isSingular = isSingular(m), ngrps = as.list(ngrps(m)), log = I(log),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i],
      var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
      var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    ranef = list(grpvar = as.character(re$grpvar), term = as.character(re$term),
                 grp = as.character(re$grp), condval = re$condval, condsd = re$condsd))
}

# ---- term order: tied numbers of levels ------------------------------------------------------
set.seed(20240610)
n <- 300
crossed <- data.frame(A = sample(paste0("a", 1:5), n, TRUE), B = sample(paste0("b", 1:5), n, TRUE),
                      C = sample(paste0("c", 1:3), n, TRUE), G = sample(paste0("g", 1:10), n, TRUE),
                      x = round(runif(n, 0, 4), 3))
eff <- function(f, sd) { l <- sort(unique(f)); setNames(rnorm(length(l), 0, sd), l)[f] }
slope_A <- eff(crossed$A, 0.8)
crossed$y <- round(10 + 0.5 * crossed$x + eff(crossed$A, 1.5) + eff(crossed$B, 1) + eff(crossed$C, 2) +
                   eff(crossed$G, 1.2) + slope_A * crossed$x + rnorm(n), 4)
write.csv(crossed, file.path(out_dir, "crossed_ties.csv"), row.names = FALSE)
crossed <- read.csv(file.path(out_dir, "crossed_ties.csv"))
order_cases <- list(
  list(id = "ties_CAB", formula = "y ~ 1 + (1|C) + (1|A) + (1|B)"),
  list(id = "ties_ABC", formula = "y ~ 1 + (1|A) + (1|B) + (1|C)"),
  list(id = "ties_slope", formula = "y ~ x + (1|A) + (0 + x|A) + (1|G)"))
order_out <- lapply(order_cases, function(cs) {
  r <- fit_logged(lmer(as.formula(cs$formula), data = crossed))
  c(list(id = cs$id, formula = cs$formula, term_names = names(getME(r$fit, "cnms")),
         cnms = unname(getME(r$fit, "cnms"))), describe(r$fit, r$log))
})
write_json_file(order_out, "term_order.json")

# ---- predict with re.form naming some columns of a term --------------------------------------
fm2 <- lmer(Reaction ~ Days + (Days | Subject), sleep)
fm2b <- lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleep)
newdata <- expand.grid(Days = range(sleep$Days), Subject = levels(sleep$Subject))
preds <- function(m, nd) list(
  re = unname(predict(m, nd)), slope_only = unname(predict(m, nd, re.form = ~(0 + Days | Subject))),
  intercept_only = unname(predict(m, nd, re.form = ~(1 | Subject))),
  both = unname(predict(m, nd, re.form = ~(Days | Subject))),
  fixed = unname(predict(m, nd, re.form = NA)))
write_json_file(list(
  formula = "Reaction ~ Days + (Days | Subject)", formula_two_terms = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
  newdata = list(Days = newdata$Days, Subject = as.character(newdata$Subject)),
  newdata_pred = preds(fm2, newdata), training_pred = lapply(preds(fm2, sleep), function(v) v[1:20]),
  two_terms_newdata_pred = preds(fm2b, newdata)), "predict_re_form.json")

# ---- isSingular on (0 + f | g) -----------------------------------------------------------
fs <- read.csv(file.path(out_dir, "factor_slope.csv"))
fs$f <- factor(fs$f); fs$g <- factor(fs$g)
sing_out <- lapply(sort(unique(fs$seed)), function(s) {
  r <- fit_logged(lmer(y ~ f + (0 + f | g), data = fs[fs$seed == s, ]))
  c(list(seed = s, formula = "y ~ f + (0 + f | g)"), describe(r$fit, r$log))
})
write_json_file(sing_out, "factor_slope_singular.json")

# ---- level labels of numeric, integer and logical grouping factors ----------------------------
set.seed(7)
num_levels <- c(0.5, 1, 2, 1e5, 1e-4, 123456, 0.1 + 0.2, 0.3, 1/3, -2, 1e15, 0.00012)
labels_data <- data.frame(gnum = rep(num_levels, each = 4), gint = rep(c(1L, 2L, 100000L, 7L, 30L, 123456L), 8),
                          glog = rep(c(TRUE, FALSE), 24))
labels_data$y <- round(rnorm(48) + as.numeric(factor(labels_data$gnum)) / 3, 4)
write.csv(labels_data, file.path(out_dir, "labels.csv"), row.names = FALSE)
labels_data <- read.csv(file.path(out_dir, "labels.csv"))
lab_fit <- lmer(y ~ 1 + (1 | gnum) + (1 | gint), data = labels_data)
write_json_file(list(
  double_values = num_levels, double_levels = levels(factor(num_levels)),
  integer_levels = levels(factor(c(1L, 2L, 100000L, 7L, 30L, 123456L, 2147483647L))),
  logical_levels = levels(factor(c(TRUE, FALSE))),
  fit_formula = "y ~ 1 + (1 | gnum) + (1 | gint)",
  fit_ranef = describe(lab_fit, character(0))$ranef, fit_theta = as.list(getME(lab_fit, "theta")),
  fit_ngrps = as.list(ngrps(lab_fit))), "level_labels.json")

# ---- warnings: badly scaled predictors, degenerate responses -----------------------------------
scaled <- function(k, formula) {
  d <- sleep; d$D <- d$Days * k
  r <- fit_logged(lmer(as.formula(formula), data = d))
  list(k = k, formula = formula, log = I(r$log), theta = as.list(getME(r$fit, "theta")),
       fixef = as.list(fixef(r$fit)), isSingular = isSingular(r$fit),
       hessian_eigenvalues = eigen(r$fit@optinfo$derivs$Hessian, only.values = TRUE)$values)
}
set.seed(1)
deg <- data.frame(g = factor(rep(1:6, each = 5)), x = rep(1:5, 6))
deg$const <- 5
deg$within0 <- as.numeric(deg$g) * 2
deg$linear <- 3 + 2 * deg$x
noise <- rnorm(30)
deg$big <- (as.numeric(deg$g) + noise) * 1e200
deg$small <- (as.numeric(deg$g) + noise) * 1e-200
degenerate <- function(formula) {
  r <- fit_logged(lmer(as.formula(formula), data = deg))
  s <- fit_logged(summary(r$fit))
  list(formula = formula, log = I(r$log), sigma = sigma(r$fit), fixef = as.list(fixef(r$fit)),
       theta = as.list(getME(r$fit, "theta")), isSingular = isSingular(r$fit),
       summary = if (inherits(s$fit, "fit_error")) paste("error:", s$fit$error) else "ok")
}
write_json_file(list(
  scaled_predictors = list(scaled(1000, "Reaction ~ D + (1 | Subject)"),
                           scaled(100, "Reaction ~ D + (D | Subject)"),
                           scaled(1, "Reaction ~ D + (D | Subject)")),
  degenerate_responses = lapply(c("const ~ 1 + (1 | g)", "const ~ x + (1 | g)", "linear ~ x + (1 | g)",
                                  "within0 ~ 1 + (1 | g)", "big ~ x + (1 | g)", "small ~ x + (1 | g)"),
                                degenerate)), "warnings.json")

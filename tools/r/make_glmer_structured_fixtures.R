# Reference GLMM fits with structured random-effects terms (diag, cs, ar1) from glmmTMB's
# Laplace approximation, the same approximation as lme4's glmer. Run from the repository root:
#   Rscript tools/r/make_glmer_structured_fixtures.R
# Writes tests/fixtures/glmer_structured/<id>.json and the simulated data sim.csv.
# glmmTMB's parametrization: diag = one SD per column; cs = one SD per column and one common
# correlation (heterogeneous cs); ar1 = one SD and rho^|k - l| over the levels in order. The
# fixtures record SDs and correlations, which map to mixedmodels' varcorr (not its theta).
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
out_dir <- "tests/fixtures/glmer_structured"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

# Simulated: 60 groups, times 1..4 per group, AR(1) group effects over time (rho 0.6, SD 1),
# a binomial response with 4 trials, and a Poisson count with a random intercept and slope in x.
set.seed(20261201)
n_g <- 60
d <- expand.grid(t = 1:4, g = 1:n_g)
d$g <- sprintf("g%02d", d$g)
d$tf <- paste0("t", d$t)
d$x <- round(rnorm(nrow(d)), 3)
rho <- 0.6
C <- rho^abs(outer(1:4, 1:4, "-"))
b <- matrix(rnorm(n_g * 4), n_g, 4) %*% chol(C)
eta <- -0.3 + 0.25 * d$t + as.vector(t(b))
d$s <- rbinom(nrow(d), 4, plogis(eta))
gi <- match(d$g, sprintf("g%02d", 1:n_g))
a0 <- rnorm(n_g, 0, 0.5)
a1 <- rnorm(n_g, 0, 0.3)
d$count <- rpois(nrow(d), exp(0.8 + 0.3 * d$x + a0[gi] + a1[gi] * d$x))
write.csv(d[, c("g", "t", "tf", "x", "s", "count")], file.path(out_dir, "sim.csv"),
          row.names = FALSE)
d$g <- factor(d$g)
d$tf <- factor(d$tf, levels = paste0("t", 1:4))

gt <- read.csv(gzfile("src/mixedmodels/datasets/data/grouseticks.csv.gz"))
gt$YEAR <- factor(gt$YEAR)
gt$LOCATION <- factor(gt$LOCATION)
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)

ctl <- glmmTMBControl(optCtrl = list(iter.max = 2000, eval.max = 2000, rel.tol = 1e-14))
record <- function(id, m, formula, data_file, family, note) {
  vc <- VarCorr(m)$cond[[1]]
  cor <- attr(vc, "correlation")
  list(id = id, engine = "glmmTMB", formula = formula, data = data_file, family = family,
       note = note, logLik = as.numeric(logLik(m)), deviance = -2 * as.numeric(logLik(m)),
       fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
       sd = as.list(attr(vc, "stddev")), correlation = unname(cor),
       theta_tmb = unname(getME(m, "theta")), convergence = m$fit$convergence,
       max_grad = max(abs(m$sdr$gradient.fixed)), pdHess = m$sdr$pdHess,
       versions = list(R = R.version.string,
                       glmmTMB = as.character(packageVersion("glmmTMB")),
                       TMB = as.character(packageVersion("TMB"))))
}
write_case <- function(x) {
  writeLines(toJSON(x, auto_unbox = TRUE, digits = 15, null = "null", pretty = TRUE),
             file.path(out_dir, paste0(x$id, ".json")))
}

m <- glmmTMB(cbind(s, 4 - s) ~ t + ar1(0 + tf | g), data = d, family = binomial, control = ctl)
write_case(record("sim_binomial_ar1", m, "cbind(s, 4 - s) ~ t + ar1(0 + tf | g)", "sim.csv",
                  "binomial", "simulated AR(1) group effects, rho 0.6"))
m <- glmmTMB(cbind(s, 4 - s) ~ t + cs(0 + tf | g), data = d, family = binomial, control = ctl)
write_case(record("sim_binomial_cs", m, "cbind(s, 4 - s) ~ t + cs(0 + tf | g)", "sim.csv",
                  "binomial", "same data as sim_binomial_ar1"))
m <- glmmTMB(count ~ x + diag(1 + x | g), data = d, family = poisson, control = ctl)
write_case(record("sim_poisson_diag", m, "count ~ x + diag(1 + x | g)", "sim.csv",
                  "poisson", "independent random intercept and slope"))
m <- glmmTMB(TICKS ~ YEAR + cHEIGHT + diag(1 + cHEIGHT | LOCATION), data = gt,
             family = poisson, control = ctl)
write_case(record("grouseticks_poisson_diag", m,
                  "TICKS ~ YEAR + cHEIGHT + diag(1 + cHEIGHT | LOCATION)", "grouseticks",
                  "poisson", "cHEIGHT = HEIGHT - mean(HEIGHT)"))

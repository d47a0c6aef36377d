# Extra lme4 glmer reference fits for features the public set does not cover (links, three
# random intercepts, a random slope, AGQ for Poisson, negative binomial on grouseticks).
# Each case is fitted with lme4's defaults and refitted with tight settings (the judge where
# lme4's default Nelder-Mead stops short). Run from the repository root:
#   Rscript tools/r/make_glmer_extra_fixtures.R
# Writes tests/fixtures/extra_glmer/<id>.json (lme4 1.1-31 on R 4.2, Debian packages).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
data_dir <- "src/mixedmodels/datasets/data"
levels_json <- fromJSON(file.path(data_dir, "factor_levels.json"), simplifyVector = FALSE)
load_data <- function(name) {
  d <- read.csv(gzfile(file.path(data_dir, paste0(name, ".csv.gz"))), stringsAsFactors = FALSE,
                check.names = FALSE)
  for (col in names(levels_json[[name]])) {
    spec <- levels_json[[name]][[col]]
    d[[col]] <- factor(as.character(d[[col]]), levels = unlist(spec$levels),
                       ordered = isTRUE(spec$ordered))
  }
  d
}
tight <- glmerControl(optimizer = c("bobyqa", "bobyqa"),
                      optCtrl = list(maxfun = 1e6, rhoend = 1e-10))
cases <- list(
  list(id = "grouseticks_poisson3", data = "grouseticks", family = "poisson", link = "log", nAGQ = 1,
       formula = "TICKS ~ YEAR + scale(HEIGHT) + (1|BROOD) + (1|INDEX) + (1|LOCATION)"),
  list(id = "grouseticks_negbin", data = "grouseticks", family = "nb", link = "log", nAGQ = 1,
       formula = "TICKS ~ YEAR + (1|BROOD) + (1|LOCATION)"),
  list(id = "verbagg_cloglog", data = "VerbAgg", family = "binomial", link = "cloglog", nAGQ = 1,
       formula = "r2 ~ btype + situ + (1|id) + (1|item)"),
  list(id = "sleepstudy_binary_slope", data = "sleepstudy", family = "binomial", link = "logit", nAGQ = 1,
       formula = "I(Reaction > 300) ~ Days + (Days|Subject)"),
  list(id = "cbpp_poisson_agq9", data = "cbpp", family = "poisson", link = "log", nAGQ = 9,
       formula = "incidence ~ period + offset(log(size)) + (1|herd)")
)
fam_of <- function(cs) switch(cs$family, poisson = poisson(link = cs$link),
                             binomial = binomial(link = cs$link))
summarise <- function(m) {
  list(fixef = as.list(fixef(m)), theta = as.list(getME(m, "theta")),
       logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"),
       se = as.list(sqrt(diag(as.matrix(vcov(m))))),
       se_RX = as.list(sqrt(diag(as.matrix(vcov(m, use.hessian = FALSE))))),
       varcorr = as.data.frame(VarCorr(m)),
       nb_theta = if (grepl("Negative Binomial", family(m)$family)) getME(m, "glmer.nb.theta") else NULL,
       family = family(m)$family, isSingular = isSingular(m),
       feval = m@optinfo$feval, messages = m@optinfo$conv$lme4$messages)
}
dir.create("tests/fixtures/extra_glmer", showWarnings = FALSE)
for (cs in cases) {
  d <- load_data(cs$data)
  f <- as.formula(cs$formula)
  if (cs$family == "nb") {
    m <- glmer.nb(f, data = d)
    t <- lme4:::optTheta(glmer.nb(f, data = d, control = tight),
                         interval = log(getME(m, "glmer.nb.theta")) + c(-1, 1), tol = 1e-10,
                         control = tight)
  } else {
    m <- glmer(f, data = d, family = fam_of(cs), nAGQ = cs$nAGQ)
    t <- glmer(f, data = d, family = fam_of(cs), nAGQ = cs$nAGQ, control = tight)
  }
  out <- c(list(id = cs$id, dataset = cs$data, formula = cs$formula, family = cs$family,
                link = cs$link, nAGQ = cs$nAGQ, lme4 = as.character(packageVersion("lme4")),
                tight_control = "glmerControl(optimizer = c('bobyqa', 'bobyqa'), optCtrl = list(maxfun = 1e6, rhoend = 1e-10))"),
           list(default = summarise(m), tight = summarise(t)))
  write_json(out, file.path("tests/fixtures/extra_glmer", paste0(cs$id, ".json")),
             auto_unbox = TRUE, digits = 15, pretty = TRUE, null = "null")
  cat(cs$id, as.numeric(logLik(m)), as.numeric(logLik(t)), "\n")
}

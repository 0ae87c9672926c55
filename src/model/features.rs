//! Feature kinds: numeric features, and categorical ones (text, boolean, dictionary columns) with the
//! vocabulary the model learned at fit.
//!
//! A model takes rows as a `(rows, features)` matrix of `f32` in its feature order. There a categorical
//! feature's value is its *code* in that feature's [`Vocabulary`], which the doors compute from the
//! column's text ([`Vocabulary::code`]):
//! - `0..n`: the vocabulary's values, most frequent at fit first (ties in byte order of the text);
//! - `n`: **other**: a value outside the vocabulary, either rarer at fit than the `max_categories`
//!   kept, or never seen at fit at all. A new value is scored as other, never an error;
//! - `n + 1`: **NULL**: a missing value is a category of its own (whether a field is missing often
//!   says something). NaN in a categorical column of the matrix is NULL too.
//!
//! Inside the network a categorical feature is one-hot: its code becomes a block of
//! [`Vocabulary::width`] inputs with a 1 in one place, and the network's output for that block holds one
//! logit per code, made into probabilities by a softmax and trained with cross-entropy
//! ([`super::mixed_loss`]). Numeric features keep one input and one output each, and squared error.
//!
//! **One feature, one vote.** A feature's error is its squared error in scaled units when numeric, and
//! its cross-entropy divided by `ln(max(2, vocabulary size))` when categorical — the cross-entropy of a
//! uniform guess over its values, so a feature the model knows nothing about costs about 1 either way
//! (a numeric one off by one standard deviation). The score is the mean over features, so a column of
//! sixty values weighs what one numeric column weighs, not sixty.
//!
//! [`FeatureLayout`] maps between the user's matrix (one column per feature) and the network's
//! (one-hot blocks). A model with numeric features only has the identity layout, and every path for
//! it is the numeric one.

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{Array2, ArrayView1, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{AutoencError, Result};
use crate::limits::{MAX_CATEGORIES, MAX_DISTINCT_VALUES};

/// The values of one categorical feature, most frequent first, plus two codes beyond them: other and
/// NULL (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct Vocabulary {
    values: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, u32>,
}

/// What a code stands for, for explanations and reconstructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category<'a> {
    Value(&'a str),
    Other,
    Null,
}

impl std::fmt::Display for Category<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Category::Value(text) => write!(f, "{text:?}"),
            Category::Other => f.write_str("(other)"),
            Category::Null => f.write_str("NULL"),
        }
    }
}

impl TryFrom<Vec<String>> for Vocabulary {
    type Error = AutoencError;

    /// Checks what a model file could hold wrong: too many values, or one twice.
    fn try_from(values: Vec<String>) -> Result<Self> {
        if values.len() > MAX_CATEGORIES {
            return Err(AutoencError::InvalidInput(format!(
                "a vocabulary of {} values is more than the {MAX_CATEGORIES} a categorical feature may keep",
                values.len()
            )));
        }
        let mut index = HashMap::with_capacity(values.len());
        for (code, value) in values.iter().enumerate() {
            if index.insert(value.clone(), code as u32).is_some() {
                return Err(AutoencError::InvalidInput(format!("the vocabulary holds {value:?} twice")));
            }
        }
        Ok(Vocabulary { values, index })
    }
}

impl From<Vocabulary> for Vec<String> {
    fn from(vocabulary: Vocabulary) -> Self {
        vocabulary.values
    }
}

impl Vocabulary {
    /// A vocabulary of exactly these values, in this order (codes `0..n`).
    pub fn new(values: Vec<String>) -> Result<Self> {
        Self::try_from(values)
    }

    /// Learns the vocabulary of the feature `feature` from its values at fit (`None` is NULL): the
    /// `max_categories` most frequent values, ties broken by the text's byte order so that a fit is
    /// reproducible. Counting stops with an error once more than [`MAX_DISTINCT_VALUES`] different
    /// values were seen: such a column is an identifier or free text, not a category, and counting it
    /// would take memory without bound.
    pub fn fit<'a>(
        feature: &str,
        values: impl IntoIterator<Item = Option<&'a str>>,
        max_categories: usize,
    ) -> Result<Self> {
        let mut counts = CategoryCounts::default();
        counts.add(feature, values)?;
        counts.vocabulary(max_categories)
    }

    /// [`Vocabulary::fit`] for a column of text (`type_name` is its type, for the error): one whose
    /// values are numbers but for a few stray words — the way a column of numbers with one typo is
    /// read from CSV — is refused, naming the first stray word and its row. Most of its values parse as
    /// numbers, so it was meant to be numeric; taking it as a category would learn a vocabulary of
    /// number texts, silently. Every door learns text vocabularies through this.
    pub fn fit_text<'a>(
        feature: &str,
        type_name: &str,
        values: impl IntoIterator<Item = Option<&'a str>> + Clone,
        max_categories: usize,
    ) -> Result<Self> {
        let (mut numbers, mut observed, mut first_stray) = (0usize, 0usize, None);
        for (row, value) in values.clone().into_iter().enumerate() {
            let Some(value) = value else { continue };
            observed += 1;
            if value.trim().is_empty() {
                continue;
            }
            if value.trim().parse::<f64>().is_ok() {
                numbers += 1;
            } else if first_stray.is_none() {
                first_stray = Some((row, value.to_string()));
            }
        }
        if let Some((row, word)) = first_stray.filter(|_| numbers * 2 > observed) {
            return Err(AutoencError::NonNumericColumn {
                name: feature.to_string(),
                dtype: format!(
                    "{type_name}; row {row} holds '{word}' among numbers: fix the value, or make every value text to \
                     use the column as a category"
                ),
            });
        }
        Vocabulary::fit(feature, values, max_categories)
    }

    /// The values, code order.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// How many values it keeps (not counting other and NULL).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The number of codes: the values, other and NULL — the width of the feature's one-hot block.
    pub fn width(&self) -> usize {
        self.values.len() + 2
    }

    /// The code of values outside the vocabulary.
    pub fn other_code(&self) -> u32 {
        self.values.len() as u32
    }

    /// The code of a missing value.
    pub fn null_code(&self) -> u32 {
        self.values.len() as u32 + 1
    }

    /// The code of a value (`None` is NULL): its place in the vocabulary, else other.
    pub fn code(&self, value: Option<&str>) -> u32 {
        match value {
            None => self.null_code(),
            Some(text) => self.index.get(text).copied().unwrap_or_else(|| self.other_code()),
        }
    }

    /// Whether a value is outside the vocabulary (scored as other).
    pub fn is_unknown(&self, value: &str) -> bool {
        !self.index.contains_key(value)
    }

    /// What a code stands for; `None` for a number that is no code of this vocabulary.
    pub fn category(&self, code: u32) -> Option<Category<'_>> {
        let code = code as usize;
        match code.cmp(&self.values.len()) {
            std::cmp::Ordering::Less => Some(Category::Value(&self.values[code])),
            std::cmp::Ordering::Equal => Some(Category::Other),
            std::cmp::Ordering::Greater if code == self.values.len() + 1 => Some(Category::Null),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// The text a code stands for: the value, or `None` for other and NULL.
    pub fn value_of(&self, code: u32) -> Option<&str> {
        self.values.get(code as usize).map(String::as_str)
    }

    /// The factor a cross-entropy is multiplied by to make this feature's error: `1 / ln(max(2, n))`
    /// (see the module documentation).
    pub fn error_scale(&self) -> f64 {
        1.0 / (self.values.len().max(2) as f64).ln()
    }
}

/// Counts of a categorical column's values, gathered batch by batch (a table's record batches, a
/// stream's messages) before the vocabulary is chosen.
#[derive(Debug, Clone, Default)]
pub struct CategoryCounts {
    counts: HashMap<String, u64>,
}

impl CategoryCounts {
    /// Counts `values` (NULLs are not counted: NULL always has its own code).
    pub fn add<'a>(&mut self, feature: &str, values: impl IntoIterator<Item = Option<&'a str>>) -> Result<()> {
        for text in values.into_iter().flatten() {
            if let Some(count) = self.counts.get_mut(text) {
                *count += 1;
                continue;
            }
            if self.counts.len() >= MAX_DISTINCT_VALUES {
                return Err(AutoencError::TooManyCategories { feature: feature.to_string(), max: MAX_DISTINCT_VALUES });
            }
            self.counts.insert(text.to_string(), 1);
        }
        Ok(())
    }

    /// The `max_categories` most frequent values, ties in byte order.
    pub fn vocabulary(self, max_categories: usize) -> Result<Vocabulary> {
        let mut ranked: Vec<(String, u64)> = self.counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(max_categories.min(MAX_CATEGORIES));
        Vocabulary::new(ranked.into_iter().map(|(value, _)| value).collect())
    }
}

/// What a feature is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureKind {
    /// A number, scaled by the model's scaler; NaN is missing.
    Numeric,
    /// A category, given as its code in `vocabulary`.
    Categorical { vocabulary: Vocabulary },
}

impl FeatureKind {
    pub fn vocabulary(&self) -> Option<&Vocabulary> {
        match self {
            FeatureKind::Numeric => None,
            FeatureKind::Categorical { vocabulary } => Some(vocabulary),
        }
    }

    /// Inputs (and outputs) the feature takes in the network.
    pub fn width(&self) -> usize {
        self.vocabulary().map_or(1, Vocabulary::width)
    }
}

/// One categorical feature's place in the network: its one-hot block.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The feature's index in the user's matrix.
    pub feature: usize,
    /// The block's first column in the network's input and output.
    pub start: usize,
    /// The number of codes.
    pub width: usize,
    /// The factor on its cross-entropy ([`Vocabulary::error_scale`]).
    pub error_scale: f64,
}

/// Where each feature sits in the network, for the loss and the corruption, which work there.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkLayout {
    /// Network columns of the numeric features, ascending.
    pub numeric: Vec<usize>,
    /// The categorical features' blocks, ascending.
    pub blocks: Vec<Block>,
    /// Each feature's first network column (its only one when numeric), in the user's feature order.
    pub starts: Vec<usize>,
    /// Total columns.
    pub width: usize,
}

/// The kinds of a model's features and how they map onto the network.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureLayout {
    kinds: Vec<FeatureKind>,
    /// `Some` when any feature is categorical.
    network: Option<Arc<NetworkLayout>>,
}

impl FeatureLayout {
    /// `features` numeric features: the network sees the matrix as it is.
    pub fn numeric(features: usize) -> Self {
        FeatureLayout { kinds: vec![FeatureKind::Numeric; features], network: None }
    }

    pub fn new(kinds: Vec<FeatureKind>) -> Self {
        let mut numeric = Vec::new();
        let mut blocks = Vec::new();
        let mut starts = Vec::with_capacity(kinds.len());
        let mut start = 0;
        for (feature, kind) in kinds.iter().enumerate() {
            starts.push(start);
            match kind {
                FeatureKind::Numeric => numeric.push(start),
                FeatureKind::Categorical { vocabulary } => blocks.push(Block {
                    feature,
                    start,
                    width: vocabulary.width(),
                    error_scale: vocabulary.error_scale(),
                }),
            }
            start += kind.width();
        }
        let network = (!blocks.is_empty()).then(|| Arc::new(NetworkLayout { numeric, blocks, starts, width: start }));
        FeatureLayout { kinds, network }
    }

    pub fn kinds(&self) -> &[FeatureKind] {
        &self.kinds
    }

    /// Features in the user's matrix.
    pub fn features(&self) -> usize {
        self.kinds.len()
    }

    /// Columns of the network's input and output.
    pub fn width(&self) -> usize {
        self.network.as_ref().map_or(self.kinds.len(), |n| n.width)
    }

    /// Whether any feature is categorical.
    pub fn is_mixed(&self) -> bool {
        self.network.is_some()
    }

    /// The network-side layout of a model with categorical features.
    pub fn network(&self) -> Option<&Arc<NetworkLayout>> {
        self.network.as_ref()
    }

    /// The vocabulary of feature `j`, when it is categorical.
    pub fn vocabulary(&self, j: usize) -> Option<&Vocabulary> {
        self.kinds.get(j).and_then(FeatureKind::vocabulary)
    }

    /// The rows with every categorical column a valid code: NaN becomes the NULL code; anything that
    /// is not a whole number in `0..width` is an error naming row and feature.
    pub(crate) fn normalise_codes(&self, rows: ArrayView2<f32>, names: &[String]) -> Result<Array2<f32>> {
        let mut out = rows.to_owned();
        for (j, kind) in self.kinds.iter().enumerate() {
            let Some(vocabulary) = kind.vocabulary() else { continue };
            let width = vocabulary.width() as f32;
            for (row, v) in out.column_mut(j).iter_mut().enumerate() {
                if v.is_nan() {
                    *v = vocabulary.null_code() as f32;
                } else if !(v.fract() == 0.0 && *v >= 0.0 && *v < width) {
                    return Err(AutoencError::InvalidCategoryCode {
                        row,
                        feature: names.get(j).cloned().unwrap_or_default(),
                        value: *v as f64,
                        codes: vocabulary.width(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Scaled user rows (categorical columns holding codes) as the network's rows: numeric values in
    /// place, each code as its one-hot block.
    pub(crate) fn expand(&self, rows: ArrayView2<f32>) -> Array2<f32> {
        let Some(network) = &self.network else { return rows.to_owned() };
        let mut out = Array2::zeros((rows.nrows(), network.width));
        for (row, mut wide) in rows.outer_iter().zip(out.outer_iter_mut()) {
            for ((&v, kind), &start) in row.iter().zip(&self.kinds).zip(&network.starts) {
                match kind {
                    FeatureKind::Numeric => wide[start] = v,
                    FeatureKind::Categorical { .. } => wide[start + v as usize] = 1.0,
                }
            }
        }
        out
    }

    /// The mask of the network's rows from the user rows' mask (1 observed, 0 missing): numeric
    /// entries as they are, every entry of a block 1 (a category is never missing).
    pub(crate) fn expand_mask(&self, mask: ArrayView2<f32>) -> Array2<f32> {
        let Some(network) = &self.network else { return mask.to_owned() };
        let mut out = Array2::ones((mask.nrows(), network.width));
        for (row, mut wide) in mask.outer_iter().zip(out.outer_iter_mut()) {
            for ((&m, kind), &start) in row.iter().zip(&self.kinds).zip(&network.starts) {
                if *kind == FeatureKind::Numeric {
                    wide[start] = m;
                }
            }
        }
        out
    }

    /// The network's output rows in the user's terms: numeric features' values (scaled units) as they
    /// are, each categorical feature's most likely code (ties to the lower code) and that code's
    /// probability, the latter `(rows, features)` with NaN for numeric features.
    pub(crate) fn collapse(&self, output: ArrayView2<f32>) -> (Array2<f32>, Array2<f32>) {
        let n = output.nrows();
        let Some(network) = &self.network else {
            return (output.to_owned(), Array2::from_elem((n, self.kinds.len()), f32::NAN));
        };
        let mut values = Array2::zeros((n, self.kinds.len()));
        let mut probability = Array2::from_elem((n, self.kinds.len()), f32::NAN);
        for (i, out) in output.outer_iter().enumerate() {
            for (j, (kind, &start)) in self.kinds.iter().zip(&network.starts).enumerate() {
                match kind {
                    FeatureKind::Numeric => values[(i, j)] = out[start],
                    FeatureKind::Categorical { vocabulary } => {
                        let (best, p) = most_likely(out.slice(ndarray::s![start..start + vocabulary.width()]));
                        values[(i, j)] = best as f32;
                        probability[(i, j)] = p as f32;
                    }
                }
            }
        }
        (values, probability)
    }

    /// Each feature's error for one row: squared error of a numeric feature (NaN where `target` is
    /// missing), scaled cross-entropy of a categorical one (see the module documentation). `output` is
    /// the network's row, `target` the user's scaled row with codes.
    pub(crate) fn row_errors(&self, output: ArrayView1<f32>, target: ArrayView1<f32>, errors: &mut [f32]) {
        let squared = |o: f32, t: f32| if t.is_nan() { f32::NAN } else { (o - t) * (o - t) };
        let Some(network) = &self.network else {
            for ((e, &o), &t) in errors.iter_mut().zip(output).zip(target) {
                *e = squared(o, t);
            }
            return;
        };
        for (((e, &t), kind), &start) in errors.iter_mut().zip(target).zip(&self.kinds).zip(&network.starts) {
            *e = match kind {
                FeatureKind::Numeric => squared(output[start], t),
                FeatureKind::Categorical { vocabulary } => {
                    let logits = output.slice(ndarray::s![start..start + vocabulary.width()]);
                    (cross_entropy(logits, t as usize) * vocabulary.error_scale()) as f32
                }
            };
        }
    }
}

/// `ln Σ exp(logits) - logits[code]`, computed from the largest logit so nothing overflows.
pub(crate) fn cross_entropy(logits: ArrayView1<f32>, code: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    max + sum.ln() - logits[code] as f64
}

/// The code of the largest logit (the first of equals) and its softmax probability.
pub(crate) fn most_likely(logits: ArrayView1<f32>) -> (usize, f64) {
    let mut best = 0;
    for (k, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = k;
        }
    }
    let max = logits[best] as f64;
    let sum: f64 = logits.iter().map(|&v| (v as f64 - max).exp()).sum();
    (best, 1.0 / sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn vocabulary(values: &[&str]) -> Vocabulary {
        Vocabulary::new(values.iter().map(|v| v.to_string()).collect()).unwrap()
    }

    #[test]
    fn fit_keeps_the_most_frequent_values_ties_in_byte_order() {
        let values = ["b", "a", "c", "b", "a", "d", "b"].map(Some).into_iter().chain([None, None, None]);
        let fitted = Vocabulary::fit("f", values, 2).unwrap();
        assert_eq!(fitted.values(), ["b", "a"]);
        assert_eq!(fitted.code(Some("b")), 0);
        assert_eq!(fitted.code(Some("a")), 1);
        assert_eq!(fitted.code(Some("c")), fitted.other_code());
        assert_eq!(fitted.code(Some("never seen")), 2);
        assert_eq!(fitted.code(None), 3);
        assert_eq!(fitted.width(), 4);
        let all = Vocabulary::fit("f", ["z", "y", "x"].map(Some), 64).unwrap();
        assert_eq!(all.values(), ["x", "y", "z"]);
    }

    #[test]
    fn a_column_of_identifiers_is_refused_before_it_fills_memory() {
        let ids: Vec<String> = (0..=MAX_DISTINCT_VALUES).map(|i| format!("id-{i}")).collect();
        let err = Vocabulary::fit("user_id", ids.iter().map(|s| Some(s.as_str())), 64).unwrap_err();
        assert!(matches!(err, AutoencError::TooManyCategories { ref feature, .. } if feature == "user_id"), "{err}");
        assert!(err.to_string().contains("user_id"), "{err}");
    }

    #[test]
    fn categories_print_as_the_user_wrote_them() {
        let v = vocabulary(&["tcp", ""]);
        assert_eq!(v.category(0).unwrap().to_string(), "\"tcp\"");
        assert_eq!(v.category(1).unwrap().to_string(), "\"\"");
        assert_eq!(v.category(2).unwrap().to_string(), "(other)");
        assert_eq!(v.category(3).unwrap().to_string(), "NULL");
        assert_eq!(v.category(4), None);
    }

    #[test]
    fn a_vocabulary_from_a_file_is_checked() {
        let twice: std::result::Result<Vocabulary, _> = serde_json::from_str(r#"["a", "b", "a"]"#);
        assert!(twice.unwrap_err().to_string().contains("twice"));
        let too_many = serde_json::to_string(&vec!["x"; 0]).unwrap();
        assert!(serde_json::from_str::<Vocabulary>(&too_many).is_ok());
        let many: Vec<String> = (0..=MAX_CATEGORIES).map(|i| i.to_string()).collect();
        let err = serde_json::from_str::<Vocabulary>(&serde_json::to_string(&many).unwrap()).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        let back: Vocabulary = serde_json::from_str(&serde_json::to_string(&vocabulary(&["a", "b"])).unwrap()).unwrap();
        assert_eq!(back.code(Some("b")), 1);
    }

    #[test]
    fn codes_expand_to_one_hot_blocks_and_collapse_to_the_most_likely() {
        let layout = FeatureLayout::new(vec![
            FeatureKind::Numeric,
            FeatureKind::Categorical { vocabulary: vocabulary(&["tcp", "udp"]) },
            FeatureKind::Numeric,
        ]);
        assert_eq!((layout.features(), layout.width()), (3, 6));
        let names: Vec<String> = ["x", "protocol", "y"].map(String::from).to_vec();
        let rows = layout.normalise_codes(array![[0.5f32, 1.0, -1.0], [2.0, f32::NAN, 3.0]].view(), &names).unwrap();
        assert_eq!(rows[(1, 1)], 3.0, "NaN is NULL");
        let wide = layout.expand(rows.view());
        assert_eq!(wide, array![[0.5f32, 0.0, 1.0, 0.0, 0.0, -1.0], [2.0, 0.0, 0.0, 0.0, 1.0, 3.0]]);
        let mask = layout.expand_mask(array![[1.0f32, 1.0, 0.0], [1.0, 1.0, 1.0]].view());
        assert_eq!(mask.row(0).to_vec(), [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        let (values, probability) = layout.collapse(array![[0.25f32, 3.0, 1.0, 1.0, 1.0, 7.0]].view());
        assert_eq!(values.row(0).to_vec(), [0.25, 0.0, 7.0]);
        let expected = 3f64.exp() / (3f64.exp() + 3.0 * 1f64.exp());
        assert!((probability[(0, 1)] as f64 - expected).abs() < 1e-6);
        assert!(probability[(0, 0)].is_nan());
    }

    #[test]
    fn codes_outside_the_vocabulary_are_errors_naming_row_and_feature() {
        let layout = FeatureLayout::new(vec![FeatureKind::Categorical { vocabulary: vocabulary(&["a"]) }]);
        let names = vec!["kind".to_string()];
        for bad in [3.0f32, -1.0, 0.5, f32::INFINITY] {
            let err = layout.normalise_codes(array![[0.0f32], [bad]].view(), &names).unwrap_err();
            assert!(err.to_string().contains("row 1") && err.to_string().contains("kind"), "{err}");
        }
    }

    #[test]
    fn errors_weigh_each_feature_once() {
        let layout = FeatureLayout::new(vec![
            FeatureKind::Numeric,
            FeatureKind::Categorical { vocabulary: vocabulary(&["a", "b", "c", "d"]) },
        ]);
        let output = array![1.5f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mut errors = [0.0f32; 2];
        layout.row_errors(output.view(), array![1.0f32, 2.0].view(), &mut errors);
        assert_eq!(errors[0], 0.25);
        // A uniform guess over six codes, scaled by 1 / ln(4) (four values in the vocabulary).
        assert!((errors[1] as f64 - 6f64.ln() / 4f64.ln()).abs() < 1e-6, "{}", errors[1]);
        layout.row_errors(output.view(), array![f32::NAN, 0.0].view(), &mut errors);
        assert!(errors[0].is_nan());
    }
}

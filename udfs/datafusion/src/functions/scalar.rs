//! The one shape every `ae_*` scalar function has, written once: a struct holding the signature and the
//! model registry, equal to another by registry, whose name, documentation, planning and per-batch
//! computation come from a small trait, [`AeFunction`]. Each function's file holds only what is its
//! own (a unit struct implementing the trait, its user documentation, and a type alias such as
//! [`AeEncodeFunc`](super::ae_encode::AeEncodeFunc) that users name).

use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::common::plan_call;
use crate::registry::ModelRegistry;

/// What one scalar function adds to the shared shape. Implemented by a unit struct per function; the
/// functions take the registry as an argument rather than holding state, so that equality and hashing
/// (which DataFusion uses to deduplicate functions) stay the registry's identity for all of them.
pub trait AeFunction: Debug + Send + Sync + 'static {
    /// The name in SQL (also the prefix of every error message the function gives).
    const NAME: &'static str;

    /// The user documentation, rendered into `FUNCTIONS.md` by `reference.rs`.
    fn documentation() -> &'static Documentation;

    /// The accepted arguments. Most functions check their arguments themselves at planning (the
    /// conventions of `arguments.rs` are richer than a signature can say), so any list is accepted.
    fn signature() -> Signature {
        Signature::variadic_any(Volatility::Immutable)
    }

    /// The result type when the arguments are not known (DataFusion's `return_type`).
    fn return_type() -> DataType;

    /// Whether a trailing numeric literal may be a threshold (`ae_is_anomaly`).
    const THRESHOLD_ALLOWED: bool = false;

    /// Checks a call's arguments at planning and gives its result type, which may depend on the model
    /// when that is known then (a fixed-size list of the model's width). By default: the feature
    /// conventions of `arguments.rs`, and [`return_type`](Self::return_type).
    fn plan(registry: &ModelRegistry, args: ReturnFieldArgs) -> Result<DataType> {
        plan_call(Self::NAME, registry, args.arg_fields, args.scalar_arguments, Self::THRESHOLD_ALLOWED)?;
        Ok(Self::return_type())
    }

    /// Computes one batch.
    fn invoke(registry: &ModelRegistry, args: ScalarFunctionArgs) -> Result<ColumnarValue>;
}

/// A DataFusion scalar function over autoenc models, generic over what the function computes.
pub struct AeScalarFunc<F> {
    signature: Signature,
    registry: Arc<ModelRegistry>,
    // `fn() -> F`: the struct owns no `F`, so it is Send and Sync whatever `F` is.
    function: PhantomData<fn() -> F>,
}

impl<F: AeFunction> AeScalarFunc<F> {
    /// The function, resolving model names in `registry`.
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        AeScalarFunc { signature: F::signature(), registry, function: PhantomData }
    }
}

impl<F: AeFunction> Debug for AeScalarFunc<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(F::NAME).field("signature", &self.signature).field("registry", &self.registry).finish()
    }
}

// Two instances are the same function when they share a registry: a function holds nothing else.
impl<F> PartialEq for AeScalarFunc<F> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.registry, &other.registry)
    }
}

impl<F> Eq for AeScalarFunc<F> {}

impl<F> Hash for AeScalarFunc<F> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.registry), state);
    }
}

impl<F: AeFunction> ScalarUDFImpl for AeScalarFunc<F> {
    fn name(&self) -> &str {
        F::NAME
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(F::return_type())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        // Every result is nullable: a NULL row (or one with no observed feature) gives NULL.
        Ok(Arc::new(Field::new(F::NAME, F::plan(&self.registry, args)?, true)))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        F::invoke(&self.registry, args)
    }
    fn documentation(&self) -> Option<&Documentation> {
        Some(F::documentation())
    }
}

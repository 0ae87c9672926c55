//! `FUNCTIONS.md` is the rendering of every function's DataFusion documentation; this test fails when
//! the committed page is stale. `AUTOENC_UPDATE_REFERENCE=1 cargo test -p autoenc-datafusion --test
//! sql functions_reference` rewrites it.

use std::path::PathBuf;
use std::sync::Arc;

use autoenc_datafusion::{ModelRegistry, reference::functions_reference};

#[test]
fn the_committed_reference_page_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("FUNCTIONS.md");
    let rendered = functions_reference();
    if std::env::var_os("AUTOENC_UPDATE_REFERENCE").is_some() {
        std::fs::write(&path, &rendered).expect("write FUNCTIONS.md");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{} is stale: regenerate it with AUTOENC_UPDATE_REFERENCE=1 cargo test -p autoenc-datafusion --test \
         sql functions_reference",
        path.display()
    );
}

#[test]
fn every_registered_function_is_documented_on_the_page() {
    let page = functions_reference();
    let ctx = datafusion::prelude::SessionContext::new();
    autoenc_datafusion::register(&ctx, Arc::new(ModelRegistry::new()));
    let state = ctx.state();
    let mut names: Vec<String> = state.scalar_functions().keys().filter(|n| n.starts_with("ae_")).cloned().collect();
    names.extend(state.aggregate_functions().keys().filter(|n| n.starts_with("ae_")).cloned());
    names.extend(state.table_functions().keys().filter(|n| n.starts_with("ae_")).cloned());
    assert_eq!(names.len(), 10, "registered: {names:?}");
    for name in names {
        assert!(page.contains(&format!("### `{name}`")), "{name} has no section");
    }
    for function in autoenc_datafusion::scalar_functions(Arc::new(ModelRegistry::new())) {
        assert!(function.documentation().is_some(), "{} has no documentation", function.name());
    }
}

//! The functions reference page (`FUNCTIONS.md`), rendered from the DataFusion user documentation each
//! function carries, so the page and `SHOW FUNCTIONS`-style introspection can never say different things.
//! A test compares the committed page with this rendering; `AUTOENC_UPDATE_REFERENCE=1 cargo test -p
//! autoenc-datafusion --test sql functions_reference` rewrites it.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use crate::functions::ae_generate::AeGenerateFunc;
use crate::registry::ModelRegistry;

/// The whole page, in Markdown.
pub fn functions_reference() -> String {
    // Documentation does not depend on the registry; an empty one builds the function structs.
    let registry = Arc::new(ModelRegistry::new());
    let mut scalar: Vec<(String, Documentation)> = crate::scalar_functions(registry.clone())
        .into_iter()
        .filter_map(|f| f.documentation().cloned().map(|d| (f.name().to_string(), d)))
        .collect();
    scalar.sort_by(|a, b| a.0.cmp(&b.0));
    let train = AggregateUDF::from(crate::functions::ae_train::AeTrainFunc::default());
    let generate = AeGenerateFunc::new(registry);

    let mut page = String::new();
    page.push_str(
        "<!-- Generated from each function's DataFusion documentation by src/reference.rs; do not edit.\n     \
         Regenerate: AUTOENC_UPDATE_REFERENCE=1 cargo test -p autoenc-datafusion --test sql functions_reference -->\n\n",
    );
    page.push_str("# autoenc SQL functions\n\n");
    if let Some(description) = crate::functions::DOC_SECTION.description {
        let _ = writeln!(page, "{description}\n");
    }
    page.push_str(
        "Register them all with `autoenc_datafusion::register(&ctx, models)`, or use the `autoenc-sql` shell.\n\n",
    );
    let sections: [(&str, Vec<(String, Documentation)>); 3] = [
        ("Scalar functions", scalar),
        (
            "Aggregate functions",
            train.documentation().cloned().map(|d| vec![(train.name().to_string(), d)]).unwrap_or_default(),
        ),
        ("Table functions", vec![(generate.name().to_string(), generate.documentation().clone())]),
    ];
    for (title, functions) in &sections {
        let _ = writeln!(page, "## {title}\n");
        for (name, _) in functions {
            let _ = writeln!(page, "- [{name}](#{name})");
        }
        page.push('\n');
        for (name, doc) in functions {
            render(&mut page, name, doc);
        }
    }
    page
}

fn render(page: &mut String, name: &str, doc: &Documentation) {
    let _ = writeln!(page, "### `{name}`\n\n{}\n", doc.description);
    let _ = writeln!(page, "```sql\n{}\n```\n", doc.syntax_example);
    if let Some(arguments) = &doc.arguments {
        page.push_str("#### Arguments\n\n");
        for (argument, description) in arguments {
            let _ = writeln!(page, "- **{argument}**: {description}");
        }
        page.push('\n');
    }
    if let Some(example) = &doc.sql_example {
        let _ = writeln!(page, "#### Example\n\n```sql\n{}\n```\n", example.trim_end());
    }
    if let Some(alternatives) = &doc.alternative_syntax {
        page.push_str("#### Alternative syntax\n\n");
        for alternative in alternatives {
            let _ = writeln!(page, "```sql\n{alternative}\n```\n");
        }
    }
    if let Some(related) = &doc.related_udfs {
        let links: Vec<String> = related.iter().map(|r| format!("[{r}](#{r})")).collect();
        let _ = writeln!(page, "#### Related functions\n\n{}\n", links.join(", "));
    }
}

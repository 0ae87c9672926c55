//! Export of a trained model as an ONNX graph, so the model runs where autoenc does not (ONNX Runtime,
//! and anything else that reads ONNX).
//!
//! The graph takes raw rows and gives what the CLI gives, standardisation included:
//!
//! | name             | type            | meaning                                                       |
//! |------------------|-----------------|---------------------------------------------------------------|
//! | `features`       | f32 `[rows, d]` | input rows, in the model's feature order, original units      |
//! | `embedding`      | f32 `[rows, k]` | the code (variational: the posterior mean; top-k: k kept)     |
//! | `reconstruction` | f32 `[rows, d]` | the reconstruction, back in original units                    |
//! | `score`          | f64 `[rows]`    | mean squared error over features, in scaled units             |
//! | `is_anomaly`     | bool `[rows]`   | `score > threshold` (the model's threshold)                   |
//!
//! Every variant exports: they differ in how they were trained, not in how they run, except top-k
//! sparsity (a `TopK` + `ScatterElements` step on the code; ONNX breaks ties toward the lower index, as
//! autoenc does) and the variational model (the mean head gives the code, as in autoenc's scoring).
//! What the graph does not do: missing values. autoenc fills a NaN by iterative imputation; the graph
//! propagates it, so a row with a NaN gets a NaN score and `is_anomaly = false` (NaN compares false).
//! Nor does it refuse rows: where autoenc errors on an infinite value or a row whose score overflows,
//! the graph gives an infinite (or NaN) score. Check inputs before the graph if that matters.
//! Generation from the prior is not exported.
//!
//! A model with categorical features is refused with a message: its graph would need the vocabulary
//! lookup (string to code), the one-hot blocks and a softmax per block, which this export does not
//! write. Such a model runs in autoenc's doors.
//!
//! The graph is plain opset-17 operators (MatMul, Add, activations, ReduceMean, ...), written with the
//! protobuf types generated from the official `onnx.proto` (crate `onnx-protobuf`).

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::{
    AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};
use protobuf::{EnumOrUnknown, MessageField};

use crate::Autoencoder;
use crate::error::{AutoencError, Result};
use crate::model::activation::{Activation, LEAKY_SLOPE};
use crate::model::dense::Dense;
use crate::model::params::{Sparsity, Variant};

/// The ONNX operator set the graph uses. 17 is read by ONNX Runtime 1.13 (2022) and later.
pub const OPSET: i64 = 17;
/// ONNX IR version 8 goes with opset 17.
const IR_VERSION: i64 = 8;

/// Names of the graph's inputs and outputs.
pub const INPUT: &str = "features";
pub const OUTPUTS: [&str; 4] = ["embedding", "reconstruction", "score", "is_anomaly"];

/// The model as a serialised ONNX `ModelProto`, ready to write to a `.onnx` file.
pub fn export(model: &Autoencoder) -> Result<Vec<u8>> {
    let proto = model_proto(model)?;
    proto.write_to_bytes().map_err(|e| AutoencError::InvalidInput(format!("cannot serialise the ONNX graph: {e}")))
}

/// The model as an ONNX `ModelProto`.
pub fn model_proto(model: &Autoencoder) -> Result<ModelProto> {
    if let Some(j) = model.feature_kinds().iter().position(|k| k.vocabulary().is_some()) {
        return Err(AutoencError::InvalidInput(format!(
            "ONNX export takes numeric features only; feature '{}' is categorical (the graph would need its \
             vocabulary lookup, one-hot inputs and softmax outputs): score this model with autoenc's CLI, SQL, \
             Polars or stream instead",
            model.feature_names()[j]
        )));
    }
    check_finite(model)?;
    let mut graph = GraphBuilder::default();
    let d = model.n_features();
    let latent = model.latent_size();
    let scaler = model.scaler();
    let inverse = scaler.inverse_scale();

    let offset = graph.constant_f32("scaler.offset", &[d], scaler.offset.as_slice().expect("contiguous"));
    let inverse = graph.constant_f32("scaler.inverse_scale", &[d], inverse.as_slice().expect("contiguous"));
    let scale = graph.constant_f32("scaler.scale", &[d], scaler.scale.as_slice().expect("contiguous"));
    let centred = graph.node("Sub", &[INPUT, &offset], vec![]);
    let scaled = graph.node("Mul", &[&centred, &inverse], vec![]);

    let network = model.network();
    let mut h = scaled.clone();
    for (i, (layer, activation)) in network.encoder.layers.iter().zip(&network.encoder.activations).enumerate() {
        h = graph.dense(&format!("encoder.{i}"), layer, *activation, &h);
    }
    if let Some(heads) = &network.heads {
        h = graph.dense("encoder.mean", &heads.mean, Activation::Identity, &h);
    }
    if let Variant::Sparse { sparsity: Sparsity::TopK { k } } = model.params_used().variant() {
        if k < latent {
            h = graph.top_k(&h, k);
        }
    }
    graph.node_named("Identity", &[&h], OUTPUTS[0], vec![]);

    let mut r = h;
    for (i, (layer, activation)) in network.decoder.layers.iter().zip(&network.decoder.activations).enumerate() {
        r = graph.dense(&format!("decoder.{i}"), layer, *activation, &r);
    }
    let unscaled = graph.node("Mul", &[&r, &scale], vec![]);
    graph.node_named("Add", &[&unscaled, &offset], OUTPUTS[1], vec![]);

    let error = graph.node("Sub", &[&r, &scaled], vec![]);
    let squared = graph.node("Mul", &[&error, &error], vec![]);
    let mean = graph.node("ReduceMean", &[&squared], vec![ints("axes", &[1]), int("keepdims", 0)]);
    graph.node_named("Cast", &[&mean], OUTPUTS[2], vec![int("to", DataType::DOUBLE as i64)]);
    let threshold = graph.constant_f64("threshold", &[], &[model.threshold().value]);
    graph.node_named("Greater", &[OUTPUTS[2], &threshold], OUTPUTS[3], vec![]);

    let rows = || Dimension { value: Some(dimension::Value::DimParam("rows".into())), ..Default::default() };
    let fixed = |n: usize| Dimension { value: Some(dimension::Value::DimValue(n as i64)), ..Default::default() };
    let proto_graph = GraphProto {
        name: "autoenc".into(),
        doc_string: format!("autoenc {} ({})", model.params_used().variant().name(), model.architecture().describe()),
        node: graph.nodes,
        initializer: graph.initializers,
        input: vec![value_info(INPUT, DataType::FLOAT, vec![rows(), fixed(d)])],
        output: vec![
            value_info(OUTPUTS[0], DataType::FLOAT, vec![rows(), fixed(latent)]),
            value_info(OUTPUTS[1], DataType::FLOAT, vec![rows(), fixed(d)]),
            value_info(OUTPUTS[2], DataType::DOUBLE, vec![rows()]),
            value_info(OUTPUTS[3], DataType::BOOL, vec![rows()]),
        ],
        ..Default::default()
    };
    let metadata = [
        ("feature_names", serde_json::to_string(model.feature_names())?),
        ("threshold", model.threshold().value.to_string()),
        ("variant", model.params_used().variant().name().to_string()),
        ("architecture", model.architecture().describe()),
    ];
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET, ..Default::default() }],
        producer_name: "autoenc".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: MessageField::some(proto_graph),
        metadata_props: metadata
            .into_iter()
            .map(|(key, value)| StringStringEntryProto { key: key.into(), value, ..Default::default() })
            .collect(),
        ..Default::default()
    })
}

/// A diverged model (NaN or infinite weights) would export a graph that outputs NaN for every row.
fn check_finite(model: &Autoencoder) -> Result<()> {
    let network = model.network();
    for (name, values) in network.tensor_names().iter().zip(network.tensors()) {
        if values.iter().any(|v| !v.is_finite()) {
            return Err(AutoencError::InvalidInput(format!(
                "cannot export: parameter '{}' has non-finite values (the model diverged in training)",
                name.0
            )));
        }
    }
    Ok(())
}

/// Nodes and constants in the order they are added; each node's output gets a fresh name.
#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    counter: usize,
}

impl GraphBuilder {
    /// Adds `op(inputs)` and returns the name of its (single) output.
    fn node(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        self.counter += 1;
        let output = format!("{}_{}", op.to_lowercase(), self.counter);
        self.node_named(op, inputs, &output, attributes);
        output
    }

    fn node_named(&mut self, op: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: format!("{op}:{output}"),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attributes,
            ..Default::default()
        });
    }

    fn constant_f32(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, dims, DataType::FLOAT, raw)
    }

    fn constant_f64(&mut self, name: &str, dims: &[usize], values: &[f64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, dims, DataType::DOUBLE, raw)
    }

    fn constant_i64(&mut self, name: &str, dims: &[usize], values: &[i64]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.constant(name, dims, DataType::INT64, raw)
    }

    fn constant(&mut self, name: &str, dims: &[usize], data_type: DataType, raw_data: Vec<u8>) -> String {
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&n| n as i64).collect(),
            data_type: data_type as i32,
            raw_data,
            ..Default::default()
        });
        name.into()
    }

    /// `activation(x · W + b)`.
    fn dense(&mut self, name: &str, layer: &Dense<f32>, activation: Activation, x: &str) -> String {
        let weight = layer.weight.as_standard_layout();
        let weight = self.constant_f32(
            &format!("{name}.weight"),
            &[layer.inputs(), layer.outputs()],
            weight.as_slice().expect("standard layout"),
        );
        let bias =
            self.constant_f32(&format!("{name}.bias"), &[layer.outputs()], layer.bias.as_slice().expect("contiguous"));
        let product = self.node("MatMul", &[x, &weight], vec![]);
        let z = self.node("Add", &[&product, &bias], vec![]);
        match activation {
            Activation::Identity => z,
            Activation::Relu => self.node("Relu", &[&z], vec![]),
            Activation::LeakyRelu => self.node("LeakyRelu", &[&z], vec![float("alpha", LEAKY_SLOPE as f32)]),
            Activation::Elu => self.node("Elu", &[&z], vec![float("alpha", 1.0)]),
            Activation::Tanh => self.node("Tanh", &[&z], vec![]),
            Activation::Sigmoid => self.node("Sigmoid", &[&z], vec![]),
        }
    }

    /// Keeps the `k` entries of largest magnitude in each row of `code`, zeroes the rest.
    fn top_k(&mut self, code: &str, k: usize) -> String {
        let magnitude = self.node("Abs", &[code], vec![]);
        let k = self.constant_i64("top_k.k", &[1], &[k as i64]);
        self.counter += 1;
        let (values, indices) = (format!("topk_values_{}", self.counter), format!("topk_indices_{}", self.counter));
        self.nodes.push(NodeProto {
            op_type: "TopK".into(),
            name: format!("TopK:{indices}"),
            input: vec![magnitude, k],
            output: vec![values, indices.clone()],
            attribute: vec![int("axis", 1), int("largest", 1), int("sorted", 1)],
            ..Default::default()
        });
        let kept = self.node("GatherElements", &[code, &indices], vec![int("axis", 1)]);
        let shape = self.node("Shape", &[code], vec![]);
        let zero = TensorProto {
            dims: vec![1],
            data_type: DataType::FLOAT as i32,
            float_data: vec![0.0],
            ..Default::default()
        };
        let zeros = self.node("ConstantOfShape", &[&shape], vec![tensor("value", zero)]);
        self.node("ScatterElements", &[&zeros, &indices, &kept], vec![int("axis", 1)])
    }
}

fn value_info(name: &str, elem_type: DataType, dims: Vec<Dimension>) -> ValueInfoProto {
    let tensor = type_proto::Tensor {
        elem_type: elem_type as i32,
        shape: MessageField::some(TensorShapeProto { dim: dims, ..Default::default() }),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: MessageField::some(TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: name.into(), type_: EnumOrUnknown::new(AttributeType::INT), i: value, ..Default::default() }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::INTS),
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::FLOAT),
        f: value,
        ..Default::default()
    }
}

fn tensor(name: &str, value: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        type_: EnumOrUnknown::new(AttributeType::TENSOR),
        t: MessageField::some(value),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LatentSize, synthetic};

    fn model(variant: Variant) -> Autoencoder {
        let data = synthetic::sensor_stream(200, 6, 200, 0.0, 3);
        Autoencoder::params()
            .latent(LatentSize::Fixed(3))
            .variant(variant)
            .epochs(2)
            .seed(1)
            .fit(data.rows.view())
            .expect("train")
    }

    #[test]
    fn the_graph_round_trips_through_protobuf_with_every_output() {
        let model = model(Variant::Sparse { sparsity: Sparsity::TopK { k: 2 } });
        let bytes = export(&model).expect("export");
        let parsed = ModelProto::parse_from_bytes(&bytes).expect("parse");
        let graph = parsed.graph.as_ref().expect("graph");
        let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(outputs, OUTPUTS);
        assert_eq!(graph.input[0].name, INPUT);
        assert!(graph.node.iter().any(|n| n.op_type == "TopK"), "top-k step present");
        // Every node input is a graph input, an initializer or an earlier node's output.
        let mut known: Vec<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
        known.push(INPUT.into());
        for node in &graph.node {
            for input in &node.input {
                assert!(known.contains(input), "{} reads '{input}' before it exists", node.name);
            }
            known.extend(node.output.iter().cloned());
        }
    }

    #[test]
    fn a_diverged_model_is_refused_with_the_parameter_named() {
        let mut model = model(Variant::Plain);
        model.network.encoder.layers[0].weight[(0, 0)] = f32::NAN;
        let error = export(&model).expect_err("non-finite weights");
        assert!(error.to_string().contains("non-finite"), "{error}");
    }
}

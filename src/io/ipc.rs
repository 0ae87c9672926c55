//! Arrow IPC bytes (the file format or the stream format) to record batches, without trusting the
//! lengths inside them. Arrow's `FileReader` and `StreamReader` allocate each message body at the size
//! its header declares before reading it, so a damaged 600-byte file declaring a 2 GB body allocates
//! 2 GB (found by `tests/fuzz_inputs.rs`). Here the bytes are held in memory first (their size bounded
//! by the caller) and decoded with Arrow's own decoders over zero-copy slices of them — `StreamDecoder`
//! for the stream format, `FileDecoder` with the footer's blocks, each checked to lie within the file,
//! for the file format — so a declared length beyond the bytes is an error, not an allocation.

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use std::sync::Arc;

use arrow::ipc::convert::fb_to_schema;
use arrow::ipc::reader::{FileDecoder, StreamDecoder, read_footer_length};
use arrow::ipc::{Block, root_as_footer};

/// The file format's leading magic and its trailer (footer length and `ARROW1`).
const FILE_MAGIC: &[u8] = b"ARROW1";
const FILE_HEAD: usize = 8;
const FILE_TAIL: usize = 10;

/// The schema and every batch of an Arrow IPC file or stream.
pub fn decode_ipc(bytes: Buffer) -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    if bytes.starts_with(FILE_MAGIC) { decode_file(&bytes) } else { decode_stream(bytes) }
}

/// The stream format: messages one after the other, read with Arrow's `StreamDecoder`.
fn decode_stream(mut bytes: Buffer) -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    let mut decoder = StreamDecoder::new();
    let mut batches = Vec::new();
    while let Some(batch) = decoder.decode(&mut bytes)? {
        batches.push(batch);
    }
    decoder.finish()?;
    let schema = decoder.schema().ok_or_else(|| ArrowError::IpcError("no schema message".into()))?;
    Ok((schema, batches))
}

/// The file format: the footer (verified as a flatbuffer) says where each dictionary and batch is;
/// every such block is checked to lie within the file before it is sliced (zero-copy) and decoded.
fn decode_file(bytes: &Buffer) -> Result<(SchemaRef, Vec<RecordBatch>), ArrowError> {
    let damaged = |what: &str| ArrowError::IpcError(format!("damaged Arrow file: {what}"));
    let tail_start =
        bytes.len().checked_sub(FILE_TAIL).filter(|&t| t >= FILE_HEAD).ok_or_else(|| damaged("too short"))?;
    let mut tail = [0u8; FILE_TAIL];
    tail.copy_from_slice(&bytes[tail_start..]);
    let footer_len = read_footer_length(tail)?;
    let footer_start = tail_start
        .checked_sub(footer_len)
        .filter(|&s| s >= FILE_HEAD)
        .ok_or_else(|| damaged("footer larger than the file"))?;
    let footer = root_as_footer(&bytes[footer_start..tail_start])
        .map_err(|e| ArrowError::IpcError(format!("damaged Arrow file footer: {e}")))?;
    let schema = Arc::new(fb_to_schema(footer.schema().ok_or_else(|| damaged("no schema"))?));
    let mut decoder = FileDecoder::new(schema.clone(), footer.version());
    let block_bytes = |block: &Block| -> Result<Buffer, ArrowError> {
        let offset = usize::try_from(block.offset()).ok();
        let meta = usize::try_from(block.metaDataLength()).ok();
        let body = usize::try_from(block.bodyLength()).ok();
        let length = meta.zip(body).and_then(|(m, b)| m.checked_add(b)).filter(|&l| l >= 4);
        match offset.zip(length) {
            Some((offset, length)) if offset.checked_add(length).is_some_and(|end| end <= footer_start) => {
                Ok(bytes.slice_with_length(offset, length))
            }
            _ => Err(damaged("a block lies outside the file")),
        }
    };
    for block in footer.dictionaries().into_iter().flatten() {
        decoder.read_dictionary(block, &block_bytes(block)?)?;
    }
    let mut batches = Vec::new();
    for block in footer.recordBatches().ok_or_else(|| damaged("no batch index"))? {
        if let Some(batch) = decoder.read_record_batch(block, &block_bytes(block)?)? {
            batches.push(batch);
        }
    }
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, Float64Array, Int32Array};
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let dictionary: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        RecordBatch::try_from_iter([
            ("a", Arc::new(Float64Array::from(vec![Some(1.5), None, Some(3.0)])) as _),
            ("b", Arc::new(Int32Array::from(vec![1, 2, 3])) as _),
            ("c", Arc::new(dictionary) as _),
        ])
        .unwrap()
    }

    /// The batches as an Arrow IPC file, written by Arrow's own writer.
    fn file_bytes(batches: &[RecordBatch]) -> Vec<u8> {
        let mut file = Vec::new();
        let mut writer = arrow::ipc::writer::FileWriter::try_new(&mut file, &batches[0].schema()).unwrap();
        for batch in batches {
            writer.write(batch).unwrap();
        }
        writer.finish().unwrap();
        drop(writer);
        file
    }

    /// The batch as an Arrow IPC stream, written by Arrow's own writer.
    fn stream_bytes(batch: &RecordBatch) -> Vec<u8> {
        let mut stream = Vec::new();
        let mut writer = arrow::ipc::writer::StreamWriter::try_new(&mut stream, &batch.schema()).unwrap();
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        stream
    }

    #[test]
    fn reads_both_formats_like_arrow_does() {
        let batch = batch();
        let (schema, batches) = decode_ipc(Buffer::from(file_bytes(&[batch.clone(), batch.slice(1, 2)]))).unwrap();
        assert_eq!(schema, batch.schema());
        assert_eq!(batches, vec![batch.clone(), batch.slice(1, 2)]);

        let mut stream = stream_bytes(&batch);
        let (_, batches) = decode_ipc(Buffer::from(stream.clone())).unwrap();
        assert_eq!(batches, vec![batch.clone()]);

        stream.truncate(stream.len() - 20);
        assert!(decode_ipc(Buffer::from(stream)).is_err(), "a truncated stream is an error");
        assert!(decode_ipc(Buffer::from(b"ARROW1\0\0tiny".to_vec())).is_err());
        let mut file = file_bytes(std::slice::from_ref(&batch));
        let footer_len_at = file.len() - 10;
        file[footer_len_at..footer_len_at + 4].copy_from_slice(&0x7fff_0000i32.to_le_bytes());
        assert!(decode_ipc(Buffer::from(file)).is_err(), "a footer longer than the file");
        assert!(decode_ipc(Buffer::from(Vec::<u8>::new())).is_err());
    }

    #[test]
    fn a_declared_length_beyond_the_bytes_is_an_error_not_an_allocation() {
        let batch = batch();
        let mut stream = stream_bytes(&batch);
        // The first message's metadata length (after the continuation marker) set to 2 GB.
        stream[4..8].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        assert!(decode_ipc(Buffer::from(stream)).is_err());
    }
}

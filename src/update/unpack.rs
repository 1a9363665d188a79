//! The bytes of a database from a downloaded file, by its format: as it is, gunzipped, or
//! the `.mmdb` inside MaxMind's `.tar.gz`.

use std::io::Read;

use flate2::read::GzDecoder;

use crate::config::SourceFormat;

/// The decompressed size accepted, against a gzip bomb.
const MAX_UNPACKED: u64 = 2 << 30;

/// The `.mmdb` bytes of a source file (not for CSV sources: they are imported).
pub fn mmdb_bytes(format: SourceFormat, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    match format {
        SourceFormat::Mmdb => Ok(bytes),
        SourceFormat::MmdbGz => {
            let mut out = Vec::new();
            GzDecoder::new(bytes.as_slice())
                .take(MAX_UNPACKED)
                .read_to_end(&mut out)
                .map_err(|e| format!("not a complete gzip file: {e}"))?;
            Ok(out)
        }
        SourceFormat::MaxmindTarGz => {
            let mut archive = tar::Archive::new(GzDecoder::new(bytes.as_slice()));
            let entries = archive
                .entries()
                .map_err(|e| format!("not a .tar.gz archive: {e}"))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| format!("a damaged .tar.gz archive: {e}"))?;
                let is_mmdb = entry
                    .path()
                    .ok()
                    .and_then(|p| p.extension().map(|x| x == "mmdb"))
                    .unwrap_or(false);
                if is_mmdb {
                    let mut out = Vec::new();
                    entry
                        .by_ref()
                        .take(MAX_UNPACKED)
                        .read_to_end(&mut out)
                        .map_err(|e| format!("a damaged .tar.gz archive: {e}"))?;
                    return Ok(out);
                }
            }
            Err("no .mmdb file inside the archive (a CSV edition? use `suffix=tar.gz` of the mmdb edition)".into())
        }
        SourceFormat::CountryCsv | SourceFormat::AsnCsv => {
            Err("a CSV source is imported, not unpacked".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_tar_errors_say_what_the_file_is_not() {
        assert_eq!(
            mmdb_bytes(SourceFormat::MmdbGz, gz(b"inner")).unwrap(),
            b"inner"
        );
        let cut = gz(b"some longer content that compresses");
        let err = mmdb_bytes(SourceFormat::MmdbGz, cut[..cut.len() / 2].to_vec()).unwrap_err();
        assert!(err.contains("not a complete gzip file"), "{err}");

        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_cksum();
        tar.append_data(
            &mut header,
            "GeoLite2-ASN-CSV_20261201/x.csv",
            &b"a,b\n"[..],
        )
        .unwrap();
        let archive = gz(&tar.into_inner().unwrap());
        let err = mmdb_bytes(SourceFormat::MaxmindTarGz, archive).unwrap_err();
        assert!(err.contains("no .mmdb file inside the archive"), "{err}");
        let err = mmdb_bytes(SourceFormat::MaxmindTarGz, b"garbage".to_vec()).unwrap_err();
        assert!(err.contains("tar.gz"), "{err}");
    }
}

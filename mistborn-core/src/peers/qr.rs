//! QR codes of client configs, for phone apps to scan: PNG bytes and a terminal rendering.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

use crate::error::{Error, Result};

fn code(text: &str) -> Result<QrCode> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L)
        .map_err(|e| Error::invalid("qr payload", format!("cannot encode as QR: {e}")))
}

/// A black-on-white PNG, `scale` pixels per module, with the standard 4-module quiet zone.
pub fn qr_png(text: &str, scale: u32) -> Result<Vec<u8>> {
    let code = code(text)?;
    let scale = scale.clamp(1, 32);
    let modules = code.width() as u32;
    let quiet = 4;
    let side = (modules + 2 * quiet) * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; (side * side) as usize];
    for (i, c) in colors.iter().enumerate() {
        if *c != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i as u32 % modules, i as u32 / modules);
        for dy in 0..scale {
            let y = (my + quiet) * scale + dy;
            let row = (y * side) as usize;
            let x0 = ((mx + quiet) * scale) as usize;
            pixels[row + x0..row + x0 + scale as usize].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| Error::Crypto(format!("png: {e}")))?;
        w.write_image_data(&pixels)
            .map_err(|e| Error::Crypto(format!("png: {e}")))?;
    }
    Ok(out)
}

/// The QR code drawn with Unicode half blocks, for `mistborn getconf` in a terminal.
pub fn qr_terminal(text: &str) -> Result<String> {
    Ok(code(text)?
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_and_size() {
        let png = qr_png("[Interface]\nAddress = 10.15.91.2/32\n", 4).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("decode");
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert!(info.width >= (21 + 8) * 4);
    }

    #[test]
    fn terminal_rendering_is_square_blocks() {
        let t = qr_terminal("hello").expect("qr");
        assert!(t.lines().count() > 10);
        assert!(t.contains('█') || t.contains('▀') || t.contains('▄'));
    }
}

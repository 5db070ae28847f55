//! The OmniPanel icon in its five states, from one vector description:
//! [`shapes`] lists rounded rectangles and circles on a 64×64 canvas;
//! [`rasterize`] draws them at any size (4×4 supersampled coverage, straight
//! RGBA) for the tray and the window, and [`svg`] writes the same shapes as
//! SVG for packaging (`tray/assets/icon.svg` is `svg(IconState::Ok)`, kept
//! identical by a test); `omnipanel-tray --export-icons DIR` writes PNGs of
//! every size and the SVGs ([`export`]).

use crate::core::views::IconState;

/// The canvas the shapes are drawn on.
pub const CANVAS: f32 = 64.0;

/// Pixel sizes the platforms ask for (tray 16–48, window and launchers
/// 64–256).
pub const SIZES: [u32; 8] = [16, 22, 24, 32, 48, 64, 128, 256];

/// An sRGB colour with alpha.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgba(pub u8, pub u8, pub u8, pub u8);

impl Rgba {
    fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// One filled shape on the 64×64 canvas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A rectangle with rounded corners.
    RoundRect {
        /// Left edge.
        x: f32,
        /// Top edge.
        y: f32,
        /// Width.
        w: f32,
        /// Height.
        h: f32,
        /// Corner radius.
        r: f32,
        /// Fill.
        fill: Rgba,
    },
    /// A circle.
    Circle {
        /// Centre x.
        cx: f32,
        /// Centre y.
        cy: f32,
        /// Radius.
        r: f32,
        /// Fill.
        fill: Rgba,
    },
}

impl Shape {
    fn fill(&self) -> Rgba {
        match self {
            Self::RoundRect { fill, .. } | Self::Circle { fill, .. } => *fill,
        }
    }

    /// Whether the canvas point (x, y) is inside.
    fn contains(&self, px: f32, py: f32) -> bool {
        match *self {
            Self::Circle { cx, cy, r, .. } => (px - cx).powi(2) + (py - cy).powi(2) <= r * r,
            Self::RoundRect { x, y, w, h, r, .. } => {
                // Signed distance to a rounded box.
                let hx = w / 2.0;
                let hy = h / 2.0;
                let qx = (px - (x + hx)).abs() - (hx - r);
                let qy = (py - (y + hy)).abs() - (hy - r);
                let outside = qx.max(0.0).hypot(qy.max(0.0));
                let inside = qx.max(qy).min(0.0);
                outside + inside - r <= 0.0
            }
        }
    }
}

const BACKGROUND: Rgba = Rgba(0x26, 0x32, 0x38, 0xff);
const BARS: Rgba = Rgba(0xec, 0xef, 0xf1, 0xff);
const BARS_OFF: Rgba = Rgba(0x78, 0x90, 0x9c, 0xff);

/// The badge colour of each state.
pub fn badge(state: IconState) -> Rgba {
    match state {
        IconState::Ok => Rgba(0x43, 0xa0, 0x47, 0xff),
        IconState::Busy => Rgba(0x1e, 0x88, 0xe5, 0xff),
        IconState::Warning => Rgba(0xfb, 0x8c, 0x00, 0xff),
        IconState::Error => Rgba(0xe5, 0x39, 0x35, 0xff),
        IconState::Disconnected => Rgba(0x9e, 0x9e, 0x9e, 0xff),
    }
}

/// The icon: a dark rounded panel with three bars (a list of models) and a
/// status badge in the lower right corner, ringed with the background so
/// it reads on light and dark trays.
pub fn shapes(state: IconState) -> Vec<Shape> {
    let bars = if state == IconState::Disconnected {
        BARS_OFF
    } else {
        BARS
    };
    let mut out = vec![Shape::RoundRect {
        x: 2.0,
        y: 2.0,
        w: 60.0,
        h: 60.0,
        r: 14.0,
        fill: BACKGROUND,
    }];
    for (y, w) in [(13.0, 38.0), (25.0, 30.0), (37.0, 18.0)] {
        out.push(Shape::RoundRect {
            x: 12.0,
            y,
            w,
            h: 7.0,
            r: 3.5,
            fill: bars,
        });
    }
    out.push(Shape::Circle {
        cx: 45.0,
        cy: 45.0,
        r: 17.0,
        fill: BACKGROUND,
    });
    out.push(Shape::Circle {
        cx: 45.0,
        cy: 45.0,
        r: 12.0,
        fill: badge(state),
    });
    if state == IconState::Disconnected {
        // A dark slash through the grey badge.
        out.push(Shape::RoundRect {
            x: 36.0,
            y: 43.0,
            w: 18.0,
            h: 4.0,
            r: 2.0,
            fill: BACKGROUND,
        });
    }
    out
}

/// The icon at `size`×`size` pixels, straight (not premultiplied) RGBA.
pub fn rasterize(state: IconState, size: u32) -> Vec<u8> {
    const SAMPLES: u32 = 4;
    let shapes = shapes(state);
    let scale = CANVAS / size as f32;
    let mut out = Vec::with_capacity((size * size * 4) as usize);
    for py in 0..size {
        for px in 0..size {
            // Premultiplied accumulation of "over" per sample.
            let mut acc = [0.0f32; 4];
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let (x, y) = (
                        (px as f32 + (sx as f32 + 0.5) / SAMPLES as f32) * scale,
                        (py as f32 + (sy as f32 + 0.5) / SAMPLES as f32) * scale,
                    );
                    let mut pixel = [0.0f32; 4];
                    for shape in &shapes {
                        if shape.contains(x, y) {
                            let c = shape.fill();
                            let a = f32::from(c.3) / 255.0;
                            for (i, ch) in [c.0, c.1, c.2].into_iter().enumerate() {
                                pixel[i] = f32::from(ch) / 255.0 * a + pixel[i] * (1.0 - a);
                            }
                            pixel[3] = a + pixel[3] * (1.0 - a);
                        }
                    }
                    for i in 0..4 {
                        acc[i] += pixel[i];
                    }
                }
            }
            let n = (SAMPLES * SAMPLES) as f32;
            let alpha = acc[3] / n;
            for channel in &acc[..3] {
                let straight = if alpha > 0.0 {
                    channel / n / alpha
                } else {
                    0.0
                };
                out.push(to_byte(straight));
            }
            out.push(to_byte(alpha));
        }
    }
    out
}

fn to_byte(value: f32) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The icon at `size`×`size` as a PNG file.
pub fn png(state: IconState, size: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rasterize(state, size))?;
    writer.finish()?;
    Ok(out)
}

/// Write the icon set for packaging into `dir`: `omnipanel-<size>.png`
/// (the normal state, every size in [`SIZES`]), `omnipanel.svg`, and
/// `omnipanel-<state>.svg` for each state.
pub fn export(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for size in SIZES {
        let data = png(IconState::Ok, size).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("omnipanel-{size}.png")), data)?;
    }
    std::fs::write(dir.join("omnipanel.svg"), svg(IconState::Ok))?;
    for state in IconState::ALL {
        std::fs::write(
            dir.join(format!("omnipanel-{}.svg", state.name())),
            svg(state),
        )?;
    }
    Ok(())
}

/// The icon as an SVG document.
pub fn svg(state: IconState) -> String {
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{c}\" height=\"{c}\" viewBox=\"0 0 {c} {c}\">\n  <title>OmniPanel ({})</title>\n",
        state.name(),
        c = CANVAS
    );
    for shape in shapes(state) {
        match shape {
            Shape::RoundRect {
                x,
                y,
                w,
                h,
                r,
                fill,
            } => out.push_str(&format!(
                "  <rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"{r}\" fill=\"{}\"/>\n",
                fill.hex()
            )),
            Shape::Circle { cx, cy, r, fill } => out.push_str(&format!(
                "  <circle cx=\"{cx}\" cy=\"{cy}\" r=\"{r}\" fill=\"{}\"/>\n",
                fill.hex()
            )),
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(data: &[u8], size: u32, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * size + x) * 4) as usize;
        [data[i], data[i + 1], data[i + 2], data[i + 3]]
    }

    #[test]
    fn every_state_draws_at_every_size() {
        for state in IconState::ALL {
            for size in SIZES {
                let data = rasterize(state, size);
                assert_eq!(data.len(), (size * size * 4) as usize);
                // Corners are transparent (rounded), the centre is opaque.
                assert_eq!(pixel(&data, size, 0, 0)[3], 0);
                assert_eq!(pixel(&data, size, size / 2, size / 2)[3], 255);
            }
        }
    }

    #[test]
    fn the_badge_carries_the_state_colour() {
        for state in IconState::ALL {
            let size = 64;
            let data = rasterize(state, size);
            let Rgba(r, g, b, _) = badge(state);
            // Just off the badge centre (the disconnected slash crosses it).
            assert_eq!(pixel(&data, size, 45, 39), [r, g, b, 255], "{state:?}");
        }
        assert_ne!(
            rasterize(IconState::Ok, 32),
            rasterize(IconState::Error, 32)
        );
    }

    #[test]
    fn export_writes_pngs_of_every_size_and_svgs() {
        let dir = tempfile::tempdir().unwrap();
        export(dir.path()).unwrap();
        for size in SIZES {
            let data = std::fs::read(dir.path().join(format!("omnipanel-{size}.png"))).unwrap();
            assert_eq!(&data[1..4], b"PNG");
            // IHDR width and height.
            assert_eq!(
                u32::from_be_bytes([data[16], data[17], data[18], data[19]]),
                size
            );
            assert_eq!(
                u32::from_be_bytes([data[20], data[21], data[22], data[23]]),
                size
            );
        }
        assert!(dir.path().join("omnipanel.svg").exists());
        assert!(dir.path().join("omnipanel-error.svg").exists());
    }

    #[test]
    fn shipped_svg_matches_the_code() {
        let shipped = include_str!("../../assets/icon.svg");
        assert_eq!(
            shipped,
            svg(IconState::Ok),
            "regenerate tray/assets/icon.svg"
        );
    }
}

//! PNG bar charts of the results, drawn with plotters: one horizontal bar per
//! measured thing, its value written beside it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

/// Fonts tried for the labels, in order. plotters draws text with a font file
/// it is given; these are the common places of DejaVu Sans and Liberation Sans.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// One bar: what was measured, its value, and a note printed after the value
/// (such as latencies).
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub note: String,
}

/// One line of a line chart: its name and its points (x, y).
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: &str, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self {
            name: name.to_owned(),
            points: points.into_iter().collect(),
        }
    }
}

/// Where charts go; `None` when no font was found (the tables are still
/// printed).
pub struct Charts {
    dir: Option<PathBuf>,
}

impl Charts {
    /// Charts written into `dir`, if a font for their labels can be found.
    pub fn new(dir: PathBuf) -> anyhow::Result<Self> {
        let Some(font) = FONTS.iter().find(|path| Path::new(path).exists()) else {
            eprintln!(
                "no font found for chart labels (looked for {}); charts skipped",
                FONTS.join(", ")
            );
            return Ok(Self { dir: None });
        };
        let bytes = std::fs::read(font).with_context(|| format!("reading {font}"))?;
        // plotters keeps registered fonts for the life of the process.
        register_font("sans-serif", FontStyle::Normal, Vec::leak(bytes))
            .map_err(|_| anyhow::anyhow!("{font} is not a usable font"))?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir: Some(dir) })
    }

    /// No charts.
    pub fn none() -> Self {
        Self { dir: None }
    }

    /// Draw `bars` as `file` (a `.png` name) titled `title`, values in `unit`.
    pub fn bars(&self, file: &str, title: &str, unit: &str, bars: &[Bar]) -> anyhow::Result<()> {
        self.write(file, |path| draw(path, title, unit, bars))
    }

    /// Draw `series` as lines in `file` (a `.png` name) titled `title`, on
    /// one axis starting at zero, x in `x_unit`.
    pub fn lines(
        &self,
        file: &str,
        title: &str,
        x_unit: &str,
        series: &[Series],
    ) -> anyhow::Result<()> {
        self.write(file, |path| draw_lines(path, title, x_unit, series))
    }

    /// Draw `file` with `draw`, when charts are drawn.
    fn write(
        &self,
        file: &str,
        draw: impl FnOnce(&Path) -> Result<(), Box<dyn std::error::Error>>,
    ) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let path = dir.join(file);
        draw(&path).map_err(|error| anyhow::anyhow!("drawing {}: {error}", path.display()))?;
        println!("\nChart: {}", path.display());
        Ok(())
    }
}

fn draw_lines(
    path: &Path,
    title: &str,
    x_unit: &str,
    series: &[Series],
) -> Result<(), Box<dyn std::error::Error>> {
    let points = || series.iter().flat_map(|line| line.points.iter());
    let x_end = points()
        .map(|point| point.0)
        .fold(0.0, f64::max)
        .max(f64::EPSILON);
    let y_end = points().map(|point| point.1).fold(0.0, f64::max).max(1.0) * 1.4;
    let root = BitMapBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_end, 0.0..y_end)?;
    chart
        .configure_mesh()
        .x_desc(x_unit)
        .label_style(("sans-serif", 15))
        .draw()?;
    for (index, line) in series.iter().enumerate() {
        let color = Palette99::pick(index).to_rgba();
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(&line.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

fn draw(
    path: &Path,
    title: &str,
    unit: &str,
    bars: &[Bar],
) -> Result<(), Box<dyn std::error::Error>> {
    if bars.is_empty() {
        return Ok(());
    }
    let last = bars.len() - 1;
    // Rows count from the bottom; the first bar goes on top.
    let row = |index: usize| last - index;
    let rows = bars.len() as u32;
    let root = BitMapBackend::new(path, (1000, 90 + 46 * rows)).into_drawing_area();
    root.fill(&WHITE)?;
    let widest = bars.iter().map(|bar| bar.value).fold(0.0, f64::max);
    // Room on the right for the value and the note.
    let x_end = if widest > 0.0 { widest * 1.9 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(330)
        .build_cartesian_2d(0.0..x_end, (0..last).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(unit)
        .x_labels(6)
        .x_label_formatter(&|value| thousands(*value))
        .y_labels(bars.len())
        .y_label_formatter(&|segment| match segment {
            SegmentValue::CenterOf(at) if *at <= last => bars[row(*at)].label.clone(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 15))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(index, bar)| {
        let color = Palette99::pick(index).mix(0.85);
        let mut rectangle = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(row(index))),
                (bar.value, SegmentValue::Exact(row(index) + 1)),
            ],
            color.filled(),
        );
        rectangle.set_margin(6, 6, 0, 0);
        rectangle
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(index, bar)| {
        Text::new(
            format!("  {} {}", thousands(bar.value), bar.note),
            (bar.value, SegmentValue::CenterOf(row(index))),
            TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    root.present()?;
    Ok(())
}

/// `1234567.8` as `1,234,568`; values under 100 keep one decimal.
pub fn thousands(value: f64) -> String {
    if value.abs() < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(65_041.0), "65,041");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(2.58), "2.6");
    }
}

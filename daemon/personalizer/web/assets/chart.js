// The loss chart: the loss of each epoch on a log scale. A loss falls fast at first and then
// creeps (0.9, 0.1, 0.01, 0.001), so on a linear scale every later epoch looks like zero; on a
// log scale each tenfold drop takes the same height and a plateau is visible as one.

const FLOOR = 1e-6; // a loss of 0 (or below) is drawn here: log(0) has no place on the chart
const PAD = { left: 44, right: 8, top: 8, bottom: 22 };

function decadeLabel(power) {
  if (power >= 0) return String(10 ** power);
  if (power >= -3) return (10 ** power).toFixed(-power);
  return `1e${power}`;
}

// Whole decades around the losses: [low, high] powers of ten, at least one decade apart.
function decades(points) {
  const logs = points.map((p) => Math.log10(Math.max(p.loss, FLOOR)));
  const low = Math.floor(Math.min(...logs));
  let high = Math.ceil(Math.max(...logs));
  if (high === low) high = low + 1;
  return [low, high];
}

function colours() {
  const style = getComputedStyle(document.documentElement);
  const get = (name) => style.getPropertyValue(name).trim();
  return { muted: get("--muted"), line: get("--line"), accent: get("--accent") };
}

// Sizes the canvas to its box (sharp on high-density screens); the 2D context, or null while
// the canvas is not laid out.
function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return null;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  g.font = "12px system-ui, sans-serif";
  return { g, width, height };
}

export function drawLossChart(canvas, losses) {
  const points = losses.filter((p) => p.loss !== null && Number.isFinite(p.loss));
  canvas.dataset.points = String(points.length);
  canvas.dataset.scale = "log";
  delete canvas.dataset.decades;
  const area = prepare(canvas);
  if (!area) return;
  const { g, width, height } = area;
  const c = colours();
  const plotWidth = width - PAD.left - PAD.right;
  const plotHeight = height - PAD.top - PAD.bottom;
  g.strokeStyle = c.line;
  g.strokeRect(PAD.left, PAD.top, plotWidth, plotHeight);
  g.fillStyle = c.muted;
  if (!points.length) {
    const hint = "the loss of each epoch shows here";
    g.fillText(hint, PAD.left + (plotWidth - g.measureText(hint).width) / 2, height / 2);
    return;
  }
  const [low, high] = decades(points);
  const first = points[0].epoch;
  const last = points[points.length - 1].epoch;
  const x = (epoch) => PAD.left + (last === first ? 0.5 : (epoch - first) / (last - first)) * plotWidth;
  const y = (loss) => {
    const power = Math.log10(Math.max(loss, FLOOR));
    return PAD.top + (1 - (power - low) / (high - low)) * plotHeight;
  };
  // A grid line and a label at each decade (every other one when there are many).
  const step = high - low > 5 ? 2 : 1;
  for (let power = high; power >= low; power -= step) {
    const at = y(10 ** power);
    g.strokeStyle = c.line;
    g.beginPath(); g.moveTo(PAD.left, at); g.lineTo(PAD.left + plotWidth, at); g.stroke();
    g.fillStyle = c.muted;
    const label = decadeLabel(power);
    g.fillText(label, PAD.left - 6 - g.measureText(label).width, Math.min(Math.max(at + 4, 12), height - PAD.bottom));
  }
  g.fillText(`epoch ${first}`, PAD.left, height - 6);
  const endLabel = `epoch ${last}`;
  g.fillText(endLabel, width - PAD.right - g.measureText(endLabel).width, height - 6);
  g.strokeStyle = c.accent;
  g.lineWidth = 2;
  g.beginPath();
  points.forEach((p, i) => (i ? g.lineTo(x(p.epoch), y(p.loss)) : g.moveTo(x(p.epoch), y(p.loss))));
  g.stroke();
  if (points.length === 1) {
    g.fillStyle = c.accent;
    g.beginPath(); g.arc(x(first), y(points[0].loss), 3, 0, 2 * Math.PI); g.fill();
  }
  canvas.dataset.decades = `${low},${high}`;
}

import Foundation
import PGEventsSystem

/// Benchmark results as one self-contained HTML page: inline CSS and an inline SVG plot, no scripts and nothing
/// fetched from the network. The page is also well-formed XML (XHTML), so tools that parse XML read it.
///
/// It holds a header (machine, PostgreSQL and Redis versions, git commit, start time), the results table, each
/// result's per-stage latency and settings, and — for the results with a `distribution` — a latency distribution
/// plot in the HdrHistogram style: percentile on the x axis, on a log scale of 1/(1−p) (ticks 50%, 90%, 99%,
/// 99.9%, …), latency on the y axis; one line per result, with a legend when there are several. A result with a
/// `series` (a soak's samples) gets one small plot per figure over time (`BenchHTML+Series.swift`).
public enum BenchHTML {
    /// The page for `results` (an empty list gives a page that says so).
    public static func render(_ results: [BenchResult], title: String = "pgevents bench") -> String {
        var html = """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <title>\(escape(title))</title>
            <style>\(style)</style>
            </head>
            <body>
            <h1>\(escape(title))</h1>

            """
        guard !results.isEmpty else {
            html += "<p class=\"empty\">No results.</p>\n</body>\n</html>\n"
            return html
        }
        html += header(results)
        html += resultsTable(results)
        let plotted = results.filter { !($0.distribution ?? []).isEmpty }
        if !plotted.isEmpty {
            html += "<h2>Latency distribution</h2>\n" + plot(plotted) + "\n"
        }
        for result in results where !(result.series ?? []).isEmpty {
            html += "<h2>Series: \(escape(result.scenario))</h2>\n" + seriesPlots(result) + "\n"
        }
        html += details(results)
        html += "</body>\n</html>\n"
        return html
    }

    // MARK: Parts

    static let style = """
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:1200px}\
        h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}\
        table{border-collapse:collapse;font-size:0.9em}\
        th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right;vertical-align:top}\
        th{background:#f3f3f3}td.text,th.text{text-align:left}\
        tr.bad td{background:#fde2e2}\
        dl.header{display:grid;grid-template-columns:max-content auto;gap:0.2em 1em}dl.header dt{font-weight:600}dl.header dd{margin:0}\
        code{font-family:ui-monospace,monospace}\
        svg text{font-family:system-ui,sans-serif;font-size:12px;fill:#222}\
        svg .grid{stroke:#e4e4e4;stroke-width:1}svg .axis{stroke:#444;stroke-width:1}\
        svg .series{fill:none;stroke-width:2}
        """

    static func header(_ results: [BenchResult]) -> String {
        func distinct(_ property: (BenchResult) -> String) -> String {
            var seen = Set<String>()
            return results.map(property).filter { seen.insert($0).inserted }.map(escape).joined(separator: "<br/>")
        }
        let started = results.map(\.startedAt).min().map(BenchResult.timestamp) ?? ""
        // Settings shared by every result here; otherwise each result's, in the table below.
        let shared = results.allSatisfy { $0.settings == results[0].settings }
        let settings =
            !shared
            ? "per scenario, below"
            : results[0].settings.isEmpty
                ? "none" : results[0].settings.keys.sorted().map { "\($0) = \(results[0].settings[$0] ?? "")" }.joined(separator: ", ")
        return """
            <dl class="header">
            <dt>Machine</dt><dd>\(distinct { "\($0.machine.cores) cores, \(BenchComparison.gigabytes($0.machine.memoryGB)), \($0.machine.os)" })</dd>
            <dt>PostgreSQL</dt><dd>\(distinct { $0.postgresVersion.isEmpty ? "unknown" : $0.postgresVersion })</dd>
            <dt>Redis</dt><dd>\(distinct { $0.redisVersion.isEmpty ? "unknown" : $0.redisVersion })</dd>
            <dt>Git commit</dt><dd><code>\(distinct { $0.gitCommit ?? "unknown" })</code></dd>
            <dt>Started</dt><dd>\(escape(started))</dd>
            <dt>Settings</dt><dd>\(escape(settings))</dd>
            </dl>

            """
    }

    static func resultsTable(_ results: [BenchResult]) -> String {
        var html = """
            <h2>Results</h2>
            <table>
            <tr><th class="text">scenario</th><th>events</th><th>duration s</th><th>events/s</th>\
            <th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th>\
            <th>lost</th><th>duplicated</th><th>errors</th><th class="text">note</th></tr>

            """
        for result in results {
            let bad = result.lost > 0 || result.duplicated > 0
            html += "<tr\(bad ? " class=\"bad\"" : "")><td class=\"text\">\(escape(result.scenario))</td>"
            html += "<td>\(result.events)</td><td>\(String(format: "%.2f", result.durationSeconds))</td>"
            html += "<td>\(escape(BenchComparison.figure(result.eventsPerSecond)))</td>"
            if let latency = result.latencyMicroseconds {
                for value in [latency.p50, latency.p90, latency.p99, latency.p999, latency.max] {
                    html += "<td>\(milliseconds(value))</td>"
                }
            } else {
                html += String(repeating: "<td>–</td>", count: 5)
            }
            html += "<td>\(result.lost)</td><td>\(result.duplicated)</td><td>\(result.errors)</td>"
            html += "<td class=\"text\">\(escape(result.note ?? ""))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// Per result: its stages' latency, its extra figures and its settings (only for results that have any).
    static func details(_ results: [BenchResult]) -> String {
        let withDetails = results.filter { !$0.stages.isEmpty || !$0.extra.isEmpty || !$0.settings.isEmpty }
        guard !withDetails.isEmpty else { return "" }
        var html = "<h2>Stages, figures and settings</h2>\n<table>\n"
        html += "<tr><th class=\"text\">scenario</th><th class=\"text\">stages (ms: p50 / p90 / p99 / p99.9 / max)</th>"
        html += "<th class=\"text\">figures</th><th class=\"text\">settings</th></tr>\n"
        for result in withDetails {
            let stages = result.stages.keys.sorted().compactMap { name in
                result.stages[name].map { latency in
                    escape(name) + ": "
                        + [latency.p50, latency.p90, latency.p99, latency.p999, latency.max].map(milliseconds).joined(separator: " / ")
                }
            }
            let extra = result.extra.keys.sorted().map { escape($0) + " = " + escape(BenchComparison.figure(result.extra[$0] ?? .nan)) }
            let settings = result.settings.keys.sorted().map { escape($0) + " = " + escape(result.settings[$0] ?? "") }
            html += "<tr><td class=\"text\">\(escape(result.scenario))</td><td class=\"text\">\(stages.joined(separator: "<br/>"))</td>"
            html +=
                "<td class=\"text\">\(extra.joined(separator: "<br/>"))</td><td class=\"text\">\(settings.joined(separator: "<br/>"))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    // MARK: Plot

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// The percentile (0…100) as the plot's x: log10(1/(1−p)); 100% (the maximum) is placed at `cap`.
    static func logPercentile(_ percentile: Double, cap: Double) -> Double {
        let p = min(max(percentile, 0), 100) / 100
        guard p < 1 else { return cap }
        return min(log10(1 / (1 - p)), cap)
    }

    /// One SVG chart of every series in `results` (each has a non-empty `distribution`).
    static func plot(_ results: [BenchResult]) -> String {
        let width = 760.0
        let height = 420.0
        let left = 70.0
        let right = 45.0
        let top = 20.0
        let legendHeight = results.count > 1 ? Double(results.count) * 18 + 10 : 0
        let bottom = 50.0 + legendHeight
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom

        // x: up to the highest percentile below 100 measured, at least 99% (2), at most 99.9999% (6), whole nines.
        let points = results.flatMap { $0.distribution ?? [] }
        let highest = points.filter { $0.percentile < 100 }.map { logPercentile($0.percentile, cap: 6) }.max() ?? 2
        let xMax = min(6, max(2, highest.rounded(.up)))
        // y: microseconds shown in ms, or in µs when everything is under a millisecond.
        let maxValue = max(points.map(\.value).filter(\.isFinite).max() ?? 0, 0)
        let inMilliseconds = maxValue >= 1000
        let scale = inMilliseconds ? 1000.0 : 1.0
        let yTicks = niceTicks(upTo: maxValue / scale)
        let yMax = yTicks.last ?? 1

        func x(_ value: Double) -> Double { left + value / xMax * plotWidth }
        func y(_ value: Double) -> Double { top + plotHeight - min(max(value / scale, 0), yMax) / yMax * plotHeight }
        func number(_ value: Double) -> String { String(format: "%.1f", value) }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        svg += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"latency by percentile\">\n"
        // Grid and ticks.
        let xTicks: [(Double, String)] = [
            (0, "0%"), (log10(2), "50%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (4, "99.99%"), (5, "99.999%"), (6, "99.9999%"),
        ]
        .filter { $0.0 <= xMax + 1e-9 }
        for (value, label) in xTicks {
            svg +=
                "<line class=\"grid\" x1=\"\(number(x(value)))\" y1=\"\(number(top))\" x2=\"\(number(x(value)))\" y2=\"\(number(top + plotHeight))\"/>\n"
            svg += "<text x=\"\(number(x(value)))\" y=\"\(number(top + plotHeight + 16))\" text-anchor=\"middle\">\(label)</text>\n"
        }
        for value in yTicks {
            let position = number(y(value * scale))
            svg +=
                "<line class=\"grid\" x1=\"\(number(left))\" y1=\"\(position)\" x2=\"\(number(left + plotWidth))\" y2=\"\(position)\"/>\n"
            svg +=
                "<text x=\"\(number(left - 6))\" y=\"\(position)\" text-anchor=\"end\" dominant-baseline=\"middle\">\(escape(tickLabel(value)))</text>\n"
        }
        // Axes and their labels.
        svg +=
            "<line class=\"axis\" x1=\"\(number(left))\" y1=\"\(number(top + plotHeight))\" x2=\"\(number(left + plotWidth))\" y2=\"\(number(top + plotHeight))\"/>\n"
        svg +=
            "<line class=\"axis\" x1=\"\(number(left))\" y1=\"\(number(top))\" x2=\"\(number(left))\" y2=\"\(number(top + plotHeight))\"/>\n"
        svg +=
            "<text x=\"\(number(left + plotWidth / 2))\" y=\"\(number(top + plotHeight + 36))\" text-anchor=\"middle\">percentile</text>\n"
        let yLabel = inMilliseconds ? "latency (ms)" : "latency (µs)"
        svg +=
            "<text x=\"16\" y=\"\(number(top + plotHeight / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(number(top + plotHeight / 2)))\">\(yLabel)</text>\n"
        // One line per series.
        for (index, result) in results.enumerated() {
            let color = palette[index % palette.count]
            let coordinates = (result.distribution ?? [])
                .filter { $0.percentile.isFinite && $0.value.isFinite }
                .sorted { $0.percentile < $1.percentile }
                .map { "\(number(x(logPercentile($0.percentile, cap: xMax)))),\(number(y($0.value)))" }
            svg +=
                "<polyline class=\"series\" fill=\"none\" stroke-width=\"2\" stroke=\"\(color)\" points=\"\(coordinates.joined(separator: " "))\">"
            svg += "<title>\(escape(result.scenario))</title></polyline>\n"
        }
        // Legend, when there is more than one line.
        if results.count > 1 {
            for (index, result) in results.enumerated() {
                let rowY = top + plotHeight + 56 + Double(index) * 18
                svg += "<line x1=\"\(number(left))\" y1=\"\(number(rowY))\" x2=\"\(number(left + 24))\" y2=\"\(number(rowY))\" "
                svg += "stroke=\"\(palette[index % palette.count])\" stroke-width=\"3\"/>"
                svg +=
                    "<text x=\"\(number(left + 30))\" y=\"\(number(rowY))\" dominant-baseline=\"middle\">\(escape(result.scenario))</text>\n"
            }
        }
        return svg + "</svg>"
    }

    /// Round ticks from 0 up to at least `maximum`: 0, step, 2·step, … with a step of 1, 2 or 5 × 10ⁿ, about 5 of them.
    static func niceTicks(upTo maximum: Double) -> [Double] {
        guard maximum.isFinite, maximum > 0 else { return [0, 1] }
        let rough = maximum / 5
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        let count = Int((maximum / step).rounded(.up))
        return (0...max(count, 1)).map { Double($0) * step }
    }

    static func tickLabel(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%g", value)
    }

    static func milliseconds(_ microseconds: Double) -> String {
        String(format: microseconds >= 10_000 ? "%.1f" : "%.3f", microseconds / 1000)
    }

    /// `text` for HTML element content or a quoted attribute value, as XML too: markup characters as entities,
    /// characters XML 1.0 cannot carry written out as `\u{1}`.
    static func escape(_ text: String) -> String {
        ReportEscaping.xml(text, inAttribute: false)
    }
}

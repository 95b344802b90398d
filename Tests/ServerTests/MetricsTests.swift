import DocketQueue
import DocketServer
import DocketTestSupport
import Foundation
import Testing

/// `/metrics` is valid Prometheus text exposition, as Prometheus' own Python parser reads it, and its label
/// values stay bounded however many job types the queue sees.
@Suite("Metrics")
struct MetricsTests {
    static let parser = #"""
        import sys
        from prometheus_client.parser import text_string_to_metric_families
        text = open(sys.argv[1]).read()
        types = set()
        for family in text_string_to_metric_families(text):
            if family.type == "unknown" or not family.documentation:
                sys.exit(f"{family.name}: no TYPE or HELP")
            for sample in family.samples:
                if family.name == "docket_job_events" and sample.labels.get("type"):
                    types.add(sample.labels["type"])
        print(len(types))
        """#

    @Test func metricsParseAndJobTypeLabelsAreCapped() async throws {
        try await withAPI { api in
            let types = 100 + 30
            let batch = (0..<types).map { #"{"type":"kind-\#($0)"}"# }.joined(separator: ",")
            #expect(try await api.call(.post, "/jobs/batch", json: #"{"jobs":[\#(batch)]}"#).status == 201)
            try await eventually("the enqueues to be journaled") { try await api.journal.reader.size().jobs == types }
            var text = ""
            try await eventually("the ingestor's metrics to show every enqueue") {
                text = try await api.call(.get, "/metrics").text
                return text.contains(#"type="other""#)
            }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString.prefix(8)).txt")
            defer { try? FileManager.default.removeItem(at: file) }
            try text.write(to: file, atomically: true, encoding: .utf8)
            let python = try ChildProcess("/usr/bin/env", ["python3", "-c", Self.parser, file.path])
            #expect(try await python.wait() == 0, "\(python.stderr)")
            // The first 100 types (the cap) keep their own label; the other 30 share "other".
            #expect(Int(python.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == 100 + 1, "\(python.stdout)")
        }
    }
}

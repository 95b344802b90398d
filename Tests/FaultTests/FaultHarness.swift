import DocketTestSupport
import Foundation
import Testing

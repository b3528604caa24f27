// fmt's compiled part, built once into jitgate rather than loaded from
// libfmt.so: the binaries start with fewer libraries to map and relocate
// (a page fault costs tens of microseconds on a virtual machine, and every
// CLI command pays them; BENCHMARKS.md, grant latency).  The other files
// include fmt as usual (neither FMT_HEADER_ONLY nor FMT_SHARED): its
// non-template functions are declared there and defined here, by
// format-inl.h, and its `extern template` declarations (format.h) are
// instantiated below.  A function missing here fails the link, never a run.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto thousands_sep_impl<wchar_t>(locale_ref) -> thousands_sep_result<wchar_t>;
template auto decimal_point_impl(locale_ref) -> char;
template auto decimal_point_impl(locale_ref) -> wchar_t;
}  // namespace detail
FMT_END_NAMESPACE

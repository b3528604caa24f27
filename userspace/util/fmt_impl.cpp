// fmt's compiled part, built once into jitgate rather than loaded from
// libfmt.so: the binaries start with fewer libraries to map and relocate
// (a page fault costs about 15 µs on the benchmark VM, and every CLI command
// pays them; BENCHMARKS.md, grant latency).  The other files include fmt as
// usual (neither FMT_HEADER_ONLY nor FMT_SHARED): its non-template functions
// are declared there and defined here, by format-inl.h, and so are the
// templates below, which those files declare and never instantiate
// themselves (`extern template`, or declared without a body: core.h,
// format.h).  Each is instantiated here for every character type fmt's own
// library provides, so that no file depends on a copy the optimiser may or
// may not have left elsewhere; a missing one fails the link, never a run.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;

template locale_ref::locale_ref(const std::locale& loc);
template auto locale_ref::get<std::locale>() const -> std::locale;

template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto thousands_sep_impl<wchar_t>(locale_ref) -> thousands_sep_result<wchar_t>;
template auto decimal_point_impl(locale_ref) -> char;
template auto decimal_point_impl(locale_ref) -> wchar_t;

template void buffer<char>::append(const char* begin, const char* end);
template void buffer<wchar_t>::append(const wchar_t* begin, const wchar_t* end);
template void vformat_to(buffer<char>& buf, string_view fmt, basic_format_args<FMT_BUFFER_CONTEXT(char)> args,
                         locale_ref loc);
}  // namespace detail
FMT_END_NAMESPACE

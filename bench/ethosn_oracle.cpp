// Ask Arm's Ethos-N support library whether an operator configuration runs on the NPU.
//
// Build and use: bench/ethosn_oracle.py (it compiles this against a checkout of
// ARM-software/ethos-n-driver-stack and feeds it the ops of crafted models).
//
// stdin: one query per line, tokens separated by spaces:
//   CONV|DW|TCONV <input> <weights> <bias> <top,bottom,left,right> <stride x,y> <output zp/scale>
//   FC <input> <weights> <bias> <output zp/scale>
//   POOL max|avg <kx,ky> <sx,sy> <top,bottom,left,right> <input>
//   CONCAT <axis> <output zp/scale> <input> <input> ...
//   REQ <input> <output zp/scale> u8|i8
//   SIGMOID|TANH <input> <output>      (the library checks a given output against the one it computes)
//   MEANXY <input>
//   PAD <top,bottom,left,right> <input>
//   LRELU <alpha> <output zp/scale> <input>
//   D2S <block> <input>
//   RELU <lower,upper> <input>             (bounds in the quantised domain)
// a tensor is n,h,w,c/u8|i8|i32/zero point/scale[;scale...][/HWIO|HWIM|NHWC]
// stdout: one line per query, "Supported", "EstimateOnly" or "Unsupported", a tab and the reason.
// --largest: an Ethos-N78 8TOPS (2 MB of SRAM) instead of the smallest, 1TOPS (448 KB).
// --legacy-compiler: ask as the support library's legacy compiler (SupportQueries(caps, false)), which
// keeps the multiple-of-16 channel rule for concat and split that Axis's table states.
#include "ethosn_support_library/Support.hpp"
#include "ethosn_support_library/SupportQueries.hpp"

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace ethosn::support_library;

namespace
{

std::vector<std::string> Split(const std::string& s, char sep)
{
    std::vector<std::string> parts;
    std::stringstream in(s);
    std::string part;
    while (std::getline(in, part, sep))
    {
        parts.push_back(part);
    }
    return parts;
}

QuantizationInfo Quant(const std::string& zp, const std::string& scales)
{
    QuantizationScales values(Split(scales, ';').size());
    size_t i = 0;
    for (const std::string& s : Split(scales, ';'))
    {
        values[i++] = std::stof(s);
    }
    if (values.size() > 1)
    {
        return QuantizationInfo(std::stoi(zp), values, 3u);
    }
    return QuantizationInfo(std::stoi(zp), values[0]);
}

QuantizationInfo OutQuant(const std::string& token)    // zp/scale
{
    std::vector<std::string> f = Split(token, '/');
    return Quant(f.at(0), f.at(1));
}

DataType Type(const std::string& t)
{
    return t == "u8" ? DataType::UINT8_QUANTIZED : t == "i8" ? DataType::INT8_QUANTIZED : DataType::INT32_QUANTIZED;
}

TensorInfo Tensor(const std::string& token)
{
    std::vector<std::string> f = Split(token, '/');
    std::vector<std::string> d = Split(f.at(0), ',');
    TensorShape shape{ std::stoul(d.at(0)), std::stoul(d.at(1)), std::stoul(d.at(2)), std::stoul(d.at(3)) };
    DataFormat format = DataFormat::NHWC;
    if (f.size() > 4)
    {
        format = f[4] == "HWIO" ? DataFormat::HWIO : f[4] == "HWIM" ? DataFormat::HWIM : DataFormat::NHWC;
    }
    return TensorInfo(shape, Type(f.at(1)), format, Quant(f.at(2), f.at(3)));
}

std::vector<uint32_t> Ints(const std::string& token)
{
    std::vector<uint32_t> values;
    for (const std::string& s : Split(token, ','))
    {
        values.push_back(static_cast<uint32_t>(std::stoul(s)));
    }
    return values;
}

Padding Pad(const std::string& token)
{
    std::vector<uint32_t> p = Ints(token);
    return Padding(p.at(0), p.at(1), p.at(2), p.at(3));
}

const char* Name(SupportedLevel level)
{
    if (level == SupportedLevel::Supported)
    {
        return "Supported";
    }
    return level == SupportedLevel::EstimateOnly ? "EstimateOnly" : "Unsupported";
}

SupportedLevel Ask(const SupportQueries& q, const std::vector<std::string>& t, char* reason)
{
    const std::string& op = t.at(0);
    const size_t n        = g_ReasonMaxLength;
    if (op == "CONV" || op == "DW" || op == "TCONV")
    {
        std::vector<uint32_t> stride = Ints(t.at(5));
        ConvolutionInfo info(Pad(t.at(4)), Stride(stride.at(0), stride.at(1)), OutQuant(t.at(6)));
        TensorInfo out;
        if (op == "CONV")
        {
            return q.IsConvolutionSupported(Tensor(t.at(3)), Tensor(t.at(2)), info, Tensor(t.at(1)), &out, reason, n);
        }
        if (op == "DW")
        {
            return q.IsDepthwiseConvolutionSupported(Tensor(t.at(3)), Tensor(t.at(2)), info, Tensor(t.at(1)), &out,
                                                     reason, n);
        }
        return q.IsTransposeConvolutionSupported(Tensor(t.at(3)), Tensor(t.at(2)), info, Tensor(t.at(1)), &out,
                                                 reason, n);
    }
    if (op == "FC")
    {
        TensorInfo out;
        return q.IsFullyConnectedSupported(Tensor(t.at(3)), Tensor(t.at(2)), FullyConnectedInfo(OutQuant(t.at(4))),
                                           Tensor(t.at(1)), &out, reason, n);
    }
    if (op == "POOL")
    {
        std::vector<uint32_t> k = Ints(t.at(2));
        std::vector<uint32_t> s = Ints(t.at(3));
        PoolingInfo info(k.at(0), k.at(1), s.at(0), s.at(1), Pad(t.at(4)),
                         t.at(1) == "max" ? PoolingType::MAX : PoolingType::AVG);
        TensorInfo out;
        return q.IsPoolingSupported(info, Tensor(t.at(5)), &out, reason, n);
    }
    if (op == "CONCAT")
    {
        std::vector<TensorInfo> inputs;
        for (size_t i = 3; i < t.size(); ++i)
        {
            inputs.push_back(Tensor(t[i]));
        }
        TensorInfo out;
        return q.IsConcatenationSupported(inputs, ConcatenationInfo(static_cast<uint32_t>(std::stoul(t.at(1))),
                                                                    OutQuant(t.at(2))),
                                          &out, reason, n);
    }
    if (op == "REQ")
    {
        RequantizeInfo info(OutQuant(t.at(2)));
        info.m_OutputDataType = Type(t.at(3));
        TensorInfo out;
        return q.IsRequantizeSupported(info, Tensor(t.at(1)), &out, reason, n);
    }
    if (op == "SIGMOID" || op == "TANH" || op == "MEANXY")
    {
        TensorInfo out = t.size() > 2 ? Tensor(t[2]) : TensorInfo();
        if (op == "SIGMOID")
        {
            return q.IsSigmoidSupported(Tensor(t.at(1)), &out, reason, n);
        }
        if (op == "TANH")
        {
            return q.IsTanhSupported(Tensor(t.at(1)), &out, reason, n);
        }
        return q.IsMeanXySupported(Tensor(t.at(1)), &out, reason, n);
    }
    if (op == "PAD")
    {
        TensorInfo out;
        return q.IsStandalonePaddingSupported(Pad(t.at(1)), Tensor(t.at(2)), &out, reason, n);
    }
    if (op == "LRELU")
    {
        TensorInfo out;
        return q.IsLeakyReluSupported(LeakyReluInfo(std::stof(t.at(1)), OutQuant(t.at(2))), Tensor(t.at(3)), &out,
                                      reason, n);
    }
    if (op == "D2S")
    {
        TensorInfo out;
        return q.IsDepthToSpaceSupported(Tensor(t.at(2)), DepthToSpaceInfo(static_cast<uint32_t>(std::stoul(t.at(1)))),
                                         &out, reason, n);
    }
    if (op == "RELU")
    {
        std::vector<std::string> b = Split(t.at(1), ',');
        TensorInfo out;
        return q.IsReluSupported(ReluInfo(static_cast<int16_t>(std::stoi(b.at(0))), static_cast<int16_t>(std::stoi(b.at(1)))),
                                 Tensor(t.at(2)), &out, reason, n);
    }
    std::snprintf(reason, n, "query %s not known to the oracle", op.c_str());
    return SupportedLevel::Unsupported;
}

}    // namespace

int main(int argc, char** argv)
{
    bool legacy = false, largest = false;
    for (int i = 1; i < argc; ++i)
    {
        legacy  = legacy || std::string(argv[i]) == "--legacy-compiler";
        largest = largest || std::string(argv[i]) == "--largest";
    }
    // ARTPEC-9's Ethos-N78 variant is not published: the smallest or the largest SRAM
    const EthosNVariant variant =
        largest ? EthosNVariant::ETHOS_N78_8TOPS_2PLE_RATIO : EthosNVariant::ETHOS_N78_1TOPS_2PLE_RATIO;
    SupportQueries queries(GetFwAndHwCapabilities(variant), !legacy);
    std::string line;
    while (std::getline(std::cin, line))
    {
        char reason[g_ReasonMaxLength] = {};
        SupportedLevel level           = SupportedLevel::Unsupported;
        try
        {
            level = Ask(queries, Split(line, ' '), reason);
        }
        catch (const std::exception& e)
        {
            std::snprintf(reason, sizeof(reason), "exception: %s", e.what());
        }
        std::cout << Name(level) << '\t' << reason << std::endl;
    }
    return 0;
}
